"""Start the web app: `python app.py [--host HOST] [--port PORT]` (default 127.0.0.1:7860).

Runs offline on the embedded default (no LLM): analytics and hub access are switched off
before Gradio is imported. The first start builds the search index. With login off the app
listens only on a loopback address unless `allow_open_access` is set.
"""

from __future__ import annotations

import argparse
import sys

from assistant.config import ConfigError, apply_offline_environment, load_settings
from assistant.runtime import limit_malloc_arenas

apply_offline_environment()
limit_malloc_arenas()  # before any thread starts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="独自利用事務 情報連携 事前相談アシスタント（Web アプリ）")
    parser.add_argument("--host", help="待ち受けるアドレス（既定: 設定の host、通常 127.0.0.1）")
    parser.add_argument("--port", type=int, help="待ち受けるポート（既定: 設定の port、通常 7860）")
    return parser.parse_args(argv)


OPEN_ACCESS_REFUSED = (
    "エラー: ログインなしのまま {host} で待ち受けると、ネットワーク上の誰でも認証なしで利用できるため、起動しません。"
    "ログインを有効にする（設定 auth_enabled = true または ASSISTANT_AUTH_ENABLED=true）か、"
    "この端末だけで使う場合は --host 127.0.0.1 で起動してください。"
    "承知のうえでログインなしで公開する場合は allow_open_access = true（ASSISTANT_ALLOW_OPEN_ACCESS=true）を設定してください。"
)
OPEN_ACCESS_WARNING = (
    "注意: ログインなしで {host} に公開しています（allow_open_access）。相談の内容は、セッション ID を知る誰でも読めます。"
    "資料管理は、このコンピューターから直接アクセスしたときだけ使えます。"
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(host=args.host, port=args.port)
        from assistant.accounts import LoginPolicy
        from assistant.audit import validated_retention

        LoginPolicy.from_settings(settings)
        validated_retention(settings.audit_retention_days)
    except ConfigError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 2
    from assistant.ui.access import is_loopback

    if not settings.auth_enabled and not is_loopback(settings.host):
        if not settings.allow_open_access:
            print(OPEN_ACCESS_REFUSED.format(host=settings.host or "すべてのアドレス"), file=sys.stderr)
            return 2
        print(OPEN_ACCESS_WARNING.format(host=settings.host), file=sys.stderr, flush=True)

    from assistant.ui.webtemp import use_home_for_gradio_temp

    use_home_for_gradio_temp(settings.home)  # Gradio's copies of uploads and downloads stay under ASSISTANT_HOME
    from assistant.service import Assistant
    from assistant.ui import build_app
    from assistant.ui.context import UIContext

    assistant = Assistant(settings)
    context = UIContext(assistant)
    context.audit.start_daily_purge()  # opening the audit log purged rows past the retention period
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
    options = launch_options(context)
    demo.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=True, **options)
    # Loaded once the page answers, so as not to slow its start; a first question waits for it.
    print("索引と辞書を読み込んでいます（初回は索引を作成します）。読み込みの間も画面は開けます…", flush=True)
    assistant.warm_up_in_background(
        on_error=lambda exc: print(f"注意: 索引を読み込めませんでした（{exc}）。最初の質問のときに再度試します", file=sys.stderr, flush=True)
    )
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
