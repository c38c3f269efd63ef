"""事前チェックリスト: one question at a time, a progress bar, and the 事前相談シート to download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from assistant.audit import CHECKLIST, source_ids
from assistant.dialogue.checklist import KIND
from assistant.dialogue.export import MAX_CONTACT_CHARS
from assistant.ui.common import (
    ANSWER_GROUP,
    ANSWER_LIMIT,
    current_viewer,
    export_format,
    friendly_errors,
    require_owner,
    require_session,
    user_error,
)
from assistant.ui.context import UIContext, new_session_id
from assistant.ui.render import esc, markdown_text, progress_html

QUICK_ANSWERS: dict[str, str] = {"yes": "はい", "no": "いいえ", "unknown": "わからない", "skip": "スキップ", "back": "戻る"}
EXPORT_FORMATS: dict[str, str] = {"Markdown (.md)": "md", "Word (.docx)": "docx", "PDF (.pdf)": "pdf"}
NOT_STARTED = "「開始／再開」を押すと、最初の質問が表示されます。"


def _citation_markdown(citation: Any) -> str:
    if not citation:
        return ""
    if isinstance(citation, dict):
        parts = [str(citation.get("title") or "")]
        if citation.get("locator"):
            parts.append(str(citation["locator"]))
        if citation.get("as_of"):
            parts.append(f"{citation['as_of']} 時点")
        if citation.get("confidence"):
            parts.append(str(citation["confidence"]))
        head = markdown_text("、".join(p for p in parts if p))
        quote = f"\n> {markdown_text(citation['quote'])}" if citation.get("quote") else ""
        return f"**根拠:** {head}{quote}"
    return f"**根拠:** {markdown_text(citation)}"


def _items_html(items: Any) -> str:
    """The checklist items with their answers and status, as the service lists them."""
    if not items:
        return ""
    rows = []
    for item in items:
        if isinstance(item, dict):
            cells = (
                item.get("phase_name") or "",
                item.get("label") or item.get("question") or item.get("step") or "",
                item.get("answer") or "",
                item.get("status") or "",
            )
            rows.append("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in cells) + "</tr>")
        else:
            rows.append(f'<tr><td colspan="4">{esc(item)}</td></tr>')
    return (
        '<table class="checklist-items"><thead><tr><th>段階</th><th>確認事項</th><th>回答</th><th>状態</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _question_markdown(result: dict[str, Any]) -> str:
    progress = result.get("progress") or {}
    message = str(result.get("message") or "")
    lines = [f"> {markdown_text(message)}", ""] if message else []
    if result.get("finished"):
        lines.append("### チェックリストは完了しました")
    else:
        where = "：".join(str(p) for p in (result.get("phase_name"), result.get("label")) if p)
        number = result.get("number") or int(progress.get("done", 0)) + 1
        lines.append(f"### 質問 {int(number)}" + (f"（{where}）" if where else ""))
        if "remaining" in progress:
            lines.append(
                f"全 {int(progress.get('total', 0))} 問中、残り {int(progress['remaining'])} 問"
                "（これまでの回答で決まる項目は省いています）\n"
            )
    lines.append(markdown_text(result.get("question") or ""))
    if result.get("current_answer"):
        lines.append(f"\n現在の回答: {markdown_text(result['current_answer'])}")
    return "\n".join(lines)


def _view(result: dict[str, Any]) -> tuple[Any, ...]:
    """(question, progress, why, items, answer box, export area, result, the session and step shown)."""
    progress = result.get("progress") or {}
    why = str(result.get("why") or "")
    why_block = "\n\n".join(
        part for part in (f"**この質問の理由:** {markdown_text(why)}" if why else "", _citation_markdown(result.get("citation"))) if part
    )
    return (
        _question_markdown(result),
        progress_html(int(progress.get("done", 0)), int(progress.get("total", 0))),
        why_block,
        _items_html(result.get("items")),
        gr.Textbox(value=""),
        gr.Group(visible=True),
        result,
        {"session": result.get("session"), "step": result.get("step")},
    )


def build_checklist_page(context: UIContext) -> gr.Textbox:
    """Build the page inside the current tab; returns the session id box (filled by the app's load event)."""
    gr.Markdown(
        "届出の前に確認しておく事項を、一問ずつ確認します。途中でやめても、同じセッション ID で再開できます。"
        "「スキップ」で後回し、「戻る」で一つ前の質問に戻ります。回答を直すときは「○○の回答を変更」と入力してください。"
        "終わったら、結果を「事前相談シート」としてダウンロードできます。"
    )
    with gr.Row():
        session = gr.Textbox(label="セッション ID（再開するときは以前の ID を入力）", scale=3, elem_id="checklist-session")
        start = gr.Button("開始／再開", variant="primary", scale=1, elem_id="checklist-start")
        fresh = gr.Button("新しいセッション", scale=1)
    progress = gr.HTML(progress_html(0, 0), label="進み具合", elem_id="checklist-progress")
    question = gr.Markdown(NOT_STARTED, label="質問", show_label=False, elem_id="checklist-question")
    with gr.Row():
        quick_buttons = {key: gr.Button(label, elem_id=f"checklist-{key}") for key, label in QUICK_ANSWERS.items()}
    with gr.Row():
        answer = gr.Textbox(label="回答（自由記述も可）", scale=4, elem_id="checklist-answer")
        submit = gr.Button("回答する", scale=1, elem_id="checklist-submit")
    why = gr.Markdown(label="理由と根拠", show_label=False, elem_id="checklist-why")
    with gr.Group(visible=False) as export_area:
        gr.Markdown("#### 事前相談シート（途中でも作成できます）")
        gr.Markdown(
            "担当者と連絡先は、回答（氏名・電話番号・メールアドレスはマスク済み）を記載します。"
            "シートに実際の氏名や連絡先を載せるときは下に入力してください。入力した値はこのファイルにだけ記載し、保存しません。"
        )
        with gr.Row():
            person = gr.Textbox(
                value="",  # a default: API callers may leave it out
                label="シートに記載する担当者名（任意・保存しません）", max_length=MAX_CONTACT_CHARS, scale=2,
                elem_id="checklist-person",
            )
            contact = gr.Textbox(
                value="",
                label="シートに記載する連絡先（任意・保存しません）", max_length=MAX_CONTACT_CHARS, scale=3,
                elem_id="checklist-contact",
            )
        with gr.Row():
            format_choice = gr.Radio(list(EXPORT_FORMATS), value="Markdown (.md)", label="形式", scale=2)
            export = gr.Button("事前相談シートを作成", scale=1, elem_id="checklist-export")
        sheet = gr.File(label="事前相談シート（クリックでダウンロード）", interactive=False, elem_id="checklist-sheet")
    items = gr.HTML(label="回答済みの項目", elem_id="checklist-items")
    with gr.Accordion("詳細データ（JSON）", open=False):
        result = gr.JSON(label="チェックリストの状態")

    # The session and step this tab last showed: an answer is recorded only for the question the user saw.
    shown_step = gr.State(None)
    outputs = [question, progress, why, items, answer, export_area, result, shown_step]
    options: dict[str, Any] = {"concurrency_id": ANSWER_GROUP, "concurrency_limit": ANSWER_LIMIT}

    def step(
        session_id: str, text: str | None, shown: dict[str, Any] | None, request: gr.Request | None
    ) -> tuple[Any, ...]:
        session = require_session(session_id)
        viewer = current_viewer(context, request)
        require_owner(context, viewer, KIND, session)
        expected = shown.get("step") if text is not None and shown and shown.get("session") == session else None
        with friendly_errors():
            outcome = context.checklist.step(session, text, expected_step=expected)
        if not outcome.get("accepted", True):
            gr.Warning(str(outcome.get("message") or ""), title="回答は記録されていません")
        elif text is not None:
            cited = outcome.get("citation")
            context.audit.record(
                CHECKLIST, viewer.actor(), question=text, session_id=session,
                turn=int((outcome.get("progress") or {}).get("done", 0)),
                sources=source_ids([cited] if isinstance(cited, dict) else []), detail=f"次の項目: {outcome.get('step')}",
            )
        return _view(outcome)

    def begin(session_id: str, request: gr.Request) -> tuple[Any, ...]:
        return step(session_id, None, None, request)

    def reply(session_id: str, text: str, shown: dict[str, Any] | None, request: gr.Request) -> tuple[Any, ...]:
        if not (text or "").strip():
            raise user_error("回答を入力するか、「はい」「いいえ」などのボタンを押してください")
        return step(session_id, text.strip(), shown, request)

    def quick(label: str) -> Any:
        # A closure, not functools.partial: Gradio passes gr.Request only to functions it can inspect.
        def answer_with(session_id: str, shown: dict[str, Any] | None, request: gr.Request) -> tuple[Any, ...]:
            return step(session_id, label, shown, request)

        return answer_with

    start.click(begin, inputs=[session], outputs=outputs, api_name="checklist_start", **options)
    gr.on(
        triggers=[submit.click, answer.submit],
        fn=reply,
        inputs=[session, answer, shown_step],
        outputs=outputs,
        api_name="checklist_answer",
        **options,
    )
    for key, button in quick_buttons.items():
        button.click(
            quick(QUICK_ANSWERS[key]),
            inputs=[session, shown_step],
            outputs=outputs,
            api_name=f"checklist_{key}",
            **options,
        )

    def new_session() -> tuple[Any, ...]:
        return (
            new_session_id("check"),
            NOT_STARTED,
            progress_html(0, 0),
            "",
            "",
            gr.Group(visible=False),
            None,
            None,
            None,
        )

    fresh.click(
        new_session,
        outputs=[session, question, progress, why, items, export_area, sheet, result, shown_step],
        api_name="checklist_new_session",
    )

    def export_sheet(session_id: str, label: str, person_name: str | None, contact_text: str | None, request: gr.Request) -> str:
        # The person and contact come from this page only and go into the file, never into the database or the log.
        session = require_session(session_id)
        require_owner(context, current_viewer(context, request), KIND, session)
        fmt = export_format(label, EXPORT_FORMATS)
        with friendly_errors():
            target = context.export_path(f"事前相談シート-{session}", fmt)
            path: Path = context.checklist.export(session, fmt, target, person=person_name or "", contact=contact_text or "")
        return str(path)

    export.click(
        export_sheet, inputs=[session, format_choice, person, contact], outputs=[sheet], api_name="checklist_export", **options
    )
    return session
