"""Start the web app: `python app.py [--host HOST] [--port PORT]` (default 127.0.0.1:7860).

Runs offline on the embedded default (no LLM): analytics and hub access are switched off
before Gradio is imported. The first start builds the search index.
"""

from __future__ import annotations

import argparse
import sys

from assistant.config import ConfigError, apply_offline_environment, load_settings

apply_offline_environment()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="独自利用事務 情報連携 事前相談アシスタント（Web アプリ）")
    parser.add_argument("--host", help="待ち受けるアドレス（既定: 設定の host、通常 127.0.0.1）")
    parser.add_argument("--port", type=int, help="待ち受けるポート（既定: 設定の port、通常 7860）")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(host=args.host, port=args.port)
    except ConfigError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 2

    from assistant.ui.webtemp import use_home_for_gradio_temp

    use_home_for_gradio_temp(settings.home)  # Gradio's copies of uploads and downloads stay under ASSISTANT_HOME
    from assistant.service import Assistant
    from assistant.ui import build_app
    from assistant.ui.context import UIContext

    assistant = Assistant(settings)
    print("索引と辞書を読み込んでいます（初回は索引を作成します）…", flush=True)
    assistant.warm_up()
    context = UIContext(assistant)
    if settings.auth_enabled and context.accounts.count() == 0:
        print(
            "注意: ログインが有効ですが、アカウントがありません。"
            "`python -m assistant.accounts add 名前 管理者` で作成してください（パスワードは標準入力）。",
            file=sys.stderr,
            flush=True,
        )
    demo = build_app(context)
    from assistant.ui.layout import launch_options

    print(f"http://{settings.host}:{settings.port}/ で起動します（終了: Ctrl-C）", flush=True)
    demo.launch(server_name=settings.host, server_port=settings.port, **launch_options(context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
