"""回答案作成 (help desk): paste an inquiry, check each question is answered, edit, copy or download the draft."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from assistant.audit import REPLY, source_ids
from assistant.ui.common import (
    ANSWER_GROUP,
    ANSWER_LIMIT,
    current_viewer,
    export_format,
    friendly_errors,
    source_lookup,
    user_error,
)
from assistant.ui.context import UIContext
from assistant.ui.render import citations_html, letter_sources, masked_note, question_map_html

EXPORT_FORMATS: dict[str, str] = {"テキスト (.txt)": "txt", "Word (.docx)": "docx"}


def build_reply_page(context: UIContext) -> None:
    gr.Markdown(
        "自治体からの問い合わせ文を貼り付けると、出典付きの回答案を作成します。"
        "右の表で、問い合わせの質問ごとにどの段落が回答しているかを確認できます（未回答の質問は色付きで示します）。"
        "回答案は編集してからコピーまたはダウンロードしてください（送付前に必ず内容を確認してください）。"
    )
    with gr.Row():
        with gr.Column(scale=3):
            inquiry = gr.Textbox(label="問い合わせ文", lines=6, max_lines=20, elem_id="reply-inquiry")
            draft_button = gr.Button("回答案を作成", variant="primary", elem_id="reply-draft-button")
            note = gr.Markdown(label="個人情報のマスク", show_label=False, elem_id="reply-masked")
            draft = gr.Textbox(
                label="回答案（編集できます。右上のボタンでコピー）",
                lines=14,
                max_lines=40,
                interactive=True,
                buttons=["copy"],
                elem_id="reply-draft",
            )
            with gr.Row():
                format_choice = gr.Radio(list(EXPORT_FORMATS), value="テキスト (.txt)", label="形式", scale=2)
                export = gr.Button("ダウンロード用ファイルを作成", scale=1, elem_id="reply-export")
            exported = gr.File(label="回答案ファイル（クリックでダウンロード）", interactive=False, elem_id="reply-file")
        with gr.Column(scale=2):
            gr.Markdown("#### 問い合わせの質問と回答案の段落")
            question_map = gr.HTML(question_map_html([]), label="質問と段落の対応", elem_id="reply-map")
            letter = gr.Textbox(
                label="出典（文書に記載する形。資料名と該当箇所）",
                lines=4,
                interactive=False,
                buttons=["copy"],
                elem_id="reply-letter-sources",
            )
            with gr.Accordion("出典の本文（引用箇所を強調）", open=False, elem_id="reply-sources-detail"):
                sources = gr.HTML(label="出典", elem_id="reply-sources")
            with gr.Accordion("詳細データ（JSON）", open=False):
                result = gr.JSON(label="回答案の作成結果")

    def make_draft(text: str, request: gr.Request) -> tuple[Any, ...]:
        viewer = current_viewer(context, request)
        with friendly_errors():
            viewer.require_reply()
            if not (text or "").strip():
                raise user_error("問い合わせ文を入力してください")
            outcome = context.reply.draft(text)
        citations = outcome.get("citations") or []
        context.audit.record(REPLY, viewer.actor(), question=text, sources=source_ids(citations))
        return (
            str(outcome.get("draft") or ""),
            question_map_html(outcome.get("questions") or []),
            letter_sources(citations),
            citations_html(citations, source_lookup(context)),
            masked_note(outcome.get("masked")),
            outcome,
        )

    draft_button.click(
        make_draft,
        inputs=[inquiry],
        outputs=[draft, question_map, letter, sources, note, result],
        api_name="reply_draft",
        concurrency_id=ANSWER_GROUP,
        concurrency_limit=ANSWER_LIMIT,
    )

    def export_draft(text: str, label: str, request: gr.Request) -> str:
        viewer = current_viewer(context, request)
        fmt = export_format(label, EXPORT_FORMATS)
        if not (text or "").strip():
            raise user_error("回答案が空です。先に回答案を作成してください")
        with friendly_errors():
            viewer.require_reply()
            path: Path = context.reply.export(text, fmt, context.export_path("回答案", fmt))
        return str(path)

    export.click(export_draft, inputs=[draft, format_choice], outputs=[exported], api_name="reply_export")
