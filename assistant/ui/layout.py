"""The whole app: a header, six tabs, and the settings that keep it offline and Japanese."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import HTTPException
from starlette.middleware import Middleware

from assistant import __version__
from assistant.accounts import LoginLocked
from assistant.ui.access import ClientAddressMiddleware, current_client, kind_of_client
from assistant.ui.admin_page import build_admin_page
from assistant.ui.cases_page import build_cases_page
from assistant.ui.chat_page import build_chat_page
from assistant.ui.checklist_page import build_checklist_page
from assistant.ui.common import current_viewer
from assistant.ui.context import UIContext, new_session_id
from assistant.ui.knowledge_page import build_knowledge_page
from assistant.ui.locale import japanese_everywhere
from assistant.ui.reply_page import build_reply_page

APP_TITLE = "独自利用事務 情報連携 事前相談アシスタント"
BROWSER_SCRIPT = Path(__file__).with_name("browser.js")
QUEUE_DEFAULT_LIMIT = 4

CSS = """
.app-header h1 { margin-bottom: 0.2em; }
.app-notice { font-size: 0.9em; opacity: 0.85; }
.sources { display: flex; flex-direction: column; gap: 0.6em; max-height: 640px; overflow-y: auto; }
.citation { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6em 0.8em; }
.citation-head { font-size: 0.95em; }
.citation-no { font-weight: bold; color: var(--color-accent); }
.citation-meta { font-size: 0.85em; opacity: 0.8; margin: 0.2em 0; }
.citation-quote { margin: 0.3em 0; padding: 0.3em 0.6em; border-left: 3px solid #e8b400; background: #fff8d6; color: #222; font-size: 0.9em; }
.source-text { white-space: pre-wrap; font-size: 0.88em; line-height: 1.6; max-height: 320px; overflow-y: auto; padding: 0.4em; }
.source-text mark { background: #ffe066; color: #000; padding: 0 1px; }
.origin { font-size: 0.82em; opacity: 0.85; }
.badge { display: inline-block; border-radius: 4px; padding: 0 0.45em; font-size: 0.8em; font-weight: bold; }
.badge-ok { background: #d3f2dc; color: #145c2c; }
.badge-check { background: #ffe3c2; color: #7a3e00; }
.sources-empty { opacity: 0.7; font-size: 0.9em; }
.interpretation { font-size: 0.88em; margin-bottom: 0.5em; padding: 0.3em 0.6em; border-radius: 6px; background: var(--background-fill-secondary); }
.progress-wrap { width: 100%; height: 14px; background: var(--neutral-200); border-radius: 7px; overflow: hidden; }
.progress-bar { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.progress-label { font-size: 0.85em; margin-top: 0.2em; }
.checklist-items { width: 100%; border-collapse: collapse; font-size: 0.9em; }
.checklist-items th, .checklist-items td { border: 1px solid var(--border-color-primary); padding: 0.3em 0.5em; text-align: left; }
.citation.active { border: 2px solid var(--color-accent); box-shadow: 0 0 0 3px #ffe06655; }
.sources-heading { font-size: 0.9em; font-weight: bold; margin-bottom: 0.4em; }
.link-kind { font-size: 0.85em; color: #7a3e00; }
#chatbot a[href^="#cite-"] { font-weight: bold; text-decoration: none; padding: 0 1px; border-radius: 3px; background: #fff3bf; color: #5c3b00; }
#chat-conversations .wrap { flex-direction: column; gap: 0.3em; }
#chat-conversations label { width: 100%; }
.question-map { width: 100%; border-collapse: collapse; font-size: 0.9em; }
.question-map th, .question-map td { border: 1px solid var(--border-color-primary); padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
.question-map tr.unanswered td { background: #ffe3e3; color: #7a0000; font-weight: bold; }
.question-map tr.partial td { background: #fff3bf; }
.q-summary { font-size: 0.9em; margin-bottom: 0.4em; }
.q-missing { color: #7a0000; font-weight: bold; }
.admin-document { align-items: center; border-bottom: 1px solid var(--border-color-primary); }
/* Phones: one page scroll (no scroll box inside the page), the answer at full length. */
@media (max-width: 768px) {
  #chatbot { height: auto !important; max-height: none !important; overflow: visible !important; }
  #chatbot .bubble-wrap { height: auto !important; max-height: none !important; overflow: visible !important; }
  .sources { max-height: none; overflow-y: visible; }
  .source-text { max-height: none; }
}
"""

JAPANESE_FONTS = (
    "Hiragino Sans",
    "Yu Gothic UI",
    "Meiryo",
    "Noto Sans CJK JP",
    "IPAexGothic",
    "IPAGothic",
    "sans-serif",
)


def theme() -> gr.themes.Base:
    """The default theme with locally served and system fonts only (no web font downloads)."""
    return gr.themes.Default(
        font=(gr.themes.LocalFont("Source Sans Pro"), *JAPANESE_FONTS),
        font_mono=(gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"),
    )


def login_check(context: UIContext) -> Any:
    """Gradio's login function: the account store's check, with the client's address for the locks."""

    async def check(username: str, password: str) -> bool:
        address, relayed = current_client()
        try:
            # In a worker thread: password hashing and the lock bookkeeping must not stall other users' pages.
            return await asyncio.to_thread(
                context.accounts.login, username, password, address, kind_of_client(address, relayed)
            )
        except LoginLocked as exc:
            # 400 makes the login page say the credentials were not accepted; the detail says why.
            raise HTTPException(status_code=400, detail=str(exc)) from exc

    return check


def launch_options(context: UIContext) -> dict[str, Any]:
    """Keyword arguments for Blocks.launch that belong to the app (not host and port)."""
    settings = context.settings
    options: dict[str, Any] = {
        "theme": theme(),
        "css": CSS,
        "js": BROWSER_SCRIPT.read_text(encoding="utf-8"),
        "i18n": japanese_everywhere(),
        "allowed_paths": [str(context.web_exports_dir)],
        "max_file_size": f"{int(settings.max_file_mb)}mb",
        "footer_links": ["api", "settings"],
        "ssr_mode": False,
        "show_error": True,
        "quiet": True,  # our own start-up line replaces Gradio's (which suggests a public share link)
        "enable_monitoring": False,
        "mcp_server": False,
        "pwa": False,
        "app_kwargs": {"middleware": [Middleware(ClientAddressMiddleware)]},
    }
    if settings.auth_enabled:
        options["auth"] = login_check(context)
        options["auth_message"] = (
            f"{APP_TITLE}\n利用するにはログインしてください。"
            f"続けて {settings.login_max_failures} 回失敗すると、しばらくログインできなくなります（管理者が解除できます）。"
        )
    return options


def _header(context: UIContext) -> gr.Markdown:
    llm = context.settings.llm_backend
    engine = "LLM なし（検索と定型文で回答）" if llm == "none" else f"LLM: {llm}"
    with gr.Row(elem_classes=["app-header"]):
        gr.Markdown(f"# {APP_TITLE}")
    gr.Markdown(
        f"個人情報保護委員会（PPC）への事前相談の準備を支援します。回答は参考情報です。最終的な判断は公式の手引・事例一覧"
        f"または委員会事務局にご確認ください。（版 {__version__}、{engine}、ネットワーク接続なしで動作）",
        elem_classes=["app-notice"],
    )
    return gr.Markdown(label="利用者", show_label=False, elem_id="viewer-label")


def build_app(context: UIContext) -> gr.Blocks:
    # Gradio's own copies of uploads and downloads are removed after a day (originals are kept elsewhere).
    with gr.Blocks(title=APP_TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        viewer_label = _header(context)
        with gr.Tabs(elem_id="main-tabs"):
            with gr.Tab("相談チャット", id="chat", elem_id="tab-chat"):
                chat_session = build_chat_page(context, demo).session
            with gr.Tab("事前チェックリスト", id="checklist", elem_id="tab-checklist"):
                checklist_session = build_checklist_page(context)
            # Pages that need a role start hidden and are shown by the load event to those who may use them.
            with gr.Tab("回答案作成", id="reply", elem_id="tab-reply", visible=False) as reply_tab:
                build_reply_page(context)
            with gr.Tab("事例一覧", id="cases", elem_id="tab-cases"):
                build_cases_page(context)
            with gr.Tab("資料管理", id="admin", elem_id="tab-admin", visible=False) as admin_tab:
                build_admin_page(context, admin_tab)
            with gr.Tab("知識の管理", id="knowledge", elem_id="tab-knowledge", visible=False) as knowledge_tab:
                build_knowledge_page(context, knowledge_tab)

        def start(request: gr.Request) -> tuple[Any, ...]:
            viewer = current_viewer(context, request)
            label = viewer.label()
            if context.settings.auth_enabled:
                label += "　[ログアウト](/logout)"
            return (
                label,
                new_session_id("chat"),
                new_session_id("check"),
                gr.Tab(visible=viewer.can_draft_replies),
                gr.Tab(visible=viewer.can_administer),
                gr.Tab(visible=viewer.can_administer),
            )

        demo.load(
            start,
            outputs=[viewer_label, chat_session, checklist_session, reply_tab, admin_tab, knowledge_tab],
            api_name="session_start",
            show_progress="hidden",
        )
    demo.queue(default_concurrency_limit=QUEUE_DEFAULT_LIMIT)
    return demo
