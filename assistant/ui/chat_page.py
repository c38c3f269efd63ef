"""相談チャット: streamed answers, the sources panel, follow-up suggestions and feedback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from assistant.audit import CHAT, source_ids
from assistant.dialogue.chat import KIND
from assistant.service import validate_question
from assistant.ui.access import Viewer
from assistant.ui.common import (
    ANSWER_GROUP,
    ANSWER_LIMIT,
    current_viewer,
    friendly_errors,
    require_owner,
    require_session,
    source_lookup,
    user_error,
)
from assistant.ui.context import UIContext, new_session_id
from assistant.ui.render import citations_html, empty_sources_html, esc, markdown_text, masked_note

RATING_GOOD = "👍 役に立った"
RATING_BAD = "👎 役に立たなかった"
RATINGS: dict[str, int] = {RATING_GOOD: 1, RATING_BAD: -1}
MAX_SUGGESTIONS = 5

FAILED_ANSWER = "（回答を作成できませんでした。表示されたエラーの内容をご確認ください）"

Message = dict[str, Any]


def _interpretation(question: str, result: dict[str, Any]) -> str:
    """How the message was understood (which question, about which affair), as the service reports it."""
    understood = str(result.get("interpretation") or "").strip()
    return f'<div class="interpretation">{esc(understood)}</div>' if understood else ""


def _suggestions_update(suggestions: list[str]) -> gr.Dataset:
    samples = [[s] for s in suggestions[:MAX_SUGGESTIONS] if s]
    return gr.Dataset(samples=samples, visible=bool(samples))


def _own_session(context: UIContext, viewer: Viewer, session_id: str) -> str:
    session = require_session(session_id)
    require_owner(context, viewer, KIND, session)
    return session


def _stream_answer(
    context: UIContext,
    viewer: Viewer,
    session_id: str,
    message: str,
    history: list[Message] | None,
    turn_map: dict[str, int] | None,
) -> Iterator[tuple[Any, ...]]:
    """Yield (chatbot, message box, sources, suggestions, turn, turn map, result) as the answer grows."""
    session = require_session(session_id)
    with friendly_errors():
        question = validate_question(message, context.settings.max_question_chars)
    require_owner(context, viewer, KIND, session)
    messages: list[Message] = [dict(m) for m in (history or [])]
    messages.append({"role": "user", "content": markdown_text(question)})
    messages.append({"role": "assistant", "content": "…"})
    turns = dict(turn_map or {})
    skip = gr.skip()
    yield messages, "", skip, skip, skip, skip, skip
    final: dict[str, Any] | None = None
    text = ""
    try:
        with friendly_errors():
            for event in context.chat.stream(session, question):
                if "delta" in event:
                    text += str(event["delta"])
                    messages[-1] = {"role": "assistant", "content": markdown_text(text)}
                    yield messages, skip, skip, skip, skip, skip, skip
                elif "final" in event:
                    final = dict(event["final"])
        if final is None:
            raise user_error("回答を作成できませんでした。もう一度お試しください")
    except gr.Error:
        messages[-1] = {"role": "assistant", "content": FAILED_ANSWER}
        yield messages, skip, skip, skip, skip, skip, skip
        raise
    messages[-1] = {"role": "assistant", "content": markdown_text(final.get("answer") or text)}
    turn = int(final.get("turn") or 0)
    context.audit.record(
        CHAT, viewer.actor(), question=question, sources=source_ids(final.get("citations") or []),
        session_id=session, turn=turn,
    )
    turns[str(len(messages) - 1)] = turn
    sources = _interpretation(question, final) + citations_html(final.get("citations") or [], source_lookup(context))
    if final.get("masked"):
        gr.Warning(masked_note(final["masked"]), title="個人情報のマスク")
    suggestions = [str(s) for s in final.get("suggestions") or []]
    yield messages, "", sources, _suggestions_update(suggestions), turn, turns, final


def _record_feedback(
    context: UIContext, viewer: Viewer, session_id: str, turn: float | None, rating: int, comment: str
) -> str:
    session = _own_session(context, viewer, session_id)
    if not turn or int(turn) < 1:
        raise user_error("評価する回答がありません。先に質問してください")
    with friendly_errors():
        context.chat.feedback(session, int(turn), rating, (comment or "").strip())
    mark = "👍" if rating > 0 else "👎"
    return f"{int(turn)} 番目の回答に {mark} を記録しました。ご協力ありがとうございます。"


def _resume(context: UIContext, viewer: Viewer, session_id: str) -> tuple[Any, ...]:
    """(chatbot, sources, suggestions, turn, turn map, result) rebuilt from the stored session."""
    session = _own_session(context, viewer, session_id)
    with friendly_errors():
        turns = context.chat.history(session)
    messages: list[Message] = []
    turn_map: dict[str, int] = {}
    last: dict[str, Any] | None = None
    for entry in turns:
        role = "user" if entry.get("role") == "user" else "assistant"
        messages.append({"role": role, "content": markdown_text(entry.get("text") or "")})
        if role == "assistant":
            turn_map[str(len(messages) - 1)] = int(entry.get("turn") or 0)
            last = entry.get("result") if isinstance(entry.get("result"), dict) else last
    if not messages:
        gr.Info(f"セッション {session} の相談履歴はありません。このまま質問すると新しく始まります。", title="お知らせ")
    if last is None:
        return messages, empty_sources_html(), _suggestions_update([]), max(turn_map.values(), default=0), turn_map, None
    return (
        messages,
        citations_html(last.get("citations") or [], source_lookup(context)),
        _suggestions_update([str(s) for s in last.get("suggestions") or []]),
        max(turn_map.values(), default=0),
        turn_map,
        last,
    )


def build_chat_page(context: UIContext) -> gr.Textbox:
    """Build the page inside the current tab; returns the session id box (filled by the app's load event)."""
    gr.Markdown(
        "独自利用事務の情報連携について質問してください。回答には根拠資料（出典）が付きます。"
        "【要確認】の記載は公式資料で確認できていない事項を含みます。"
    )
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="相談",
                height=460,
                elem_id="chatbot",
                placeholder="例: 「子どもの医療費助成で住民税の情報を照会したい。届出は必要ですか？」",
                feedback_options=("Like", "Dislike"),
                buttons=["copy"],
            )
            with gr.Row():
                message = gr.Textbox(
                    label="質問",
                    placeholder="質問を入力して Enter（改行は Shift+Enter）",
                    lines=2,
                    max_lines=8,
                    scale=5,
                    elem_id="chat-input",
                )
                send = gr.Button("送信", variant="primary", scale=1, elem_id="chat-send")
            suggestions = gr.Dataset(
                label="関連する質問（クリックで質問します）",
                components=[gr.Textbox(visible=False)],
                samples=[],
                visible=False,
                elem_id="chat-suggestions",
            )
            with gr.Accordion("この回答を評価する", open=False, elem_id="chat-feedback"):
                with gr.Row():
                    turn = gr.Number(label="回答の番号", value=0, precision=0, minimum=0, scale=1)
                    rating = gr.Radio(list(RATINGS), label="評価", value=RATING_GOOD, scale=2)
                comment = gr.Textbox(label="コメント（任意）", lines=2, placeholder="どこが役に立った／足りなかったか")
                send_feedback = gr.Button("評価を送信")
                feedback_status = gr.Markdown(label="評価の結果", show_label=False, elem_id="chat-feedback-status")
            with gr.Accordion("セッション", open=False):
                session = gr.Textbox(label="セッション ID（同じ ID で相談を続けられます）", elem_id="chat-session")
                with gr.Row():
                    resume = gr.Button("この ID の相談を再開", elem_id="chat-resume")
                    new_session = gr.Button("新しい相談を始める")
        with gr.Column(scale=2):
            gr.Markdown("#### 出典")
            sources = gr.HTML(empty_sources_html(), label="出典", elem_id="chat-sources")
            with gr.Accordion("回答の詳細データ（JSON）", open=False):
                result = gr.JSON(label="回答")
    turn_map = gr.State({})

    outputs = [chatbot, message, sources, suggestions, turn, turn_map, result]

    def ask(
        session_id: str, text: str, history: list[Message], turns: dict[str, int], request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        yield from _stream_answer(context, current_viewer(context, request), session_id, text, history, turns)

    def ask_suggestion(
        session_id: str, sample: list[str] | str, history: list[Message], turns: dict[str, int], request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        text = sample[0] if isinstance(sample, list) and sample else str(sample or "")
        yield from _stream_answer(context, current_viewer(context, request), session_id, text, history, turns)

    gr.on(
        triggers=[message.submit, send.click],
        fn=ask,
        inputs=[session, message, chatbot, turn_map],
        outputs=outputs,
        api_name="chat",
        concurrency_id=ANSWER_GROUP,
        concurrency_limit=ANSWER_LIMIT,
        show_progress="minimal",
    )
    suggestions.click(
        ask_suggestion,
        inputs=[session, suggestions, chatbot, turn_map],
        outputs=outputs,
        api_name="chat_suggestion",
        concurrency_id=ANSWER_GROUP,
        concurrency_limit=ANSWER_LIMIT,
        show_progress="minimal",
    )

    def feedback(session_id: str, turn_number: float, rating_label: str, text: str, request: gr.Request) -> str:
        if rating_label not in RATINGS:
            raise user_error(f"評価は {' / '.join(RATINGS)} から選んでください")
        viewer = current_viewer(context, request)
        return _record_feedback(context, viewer, session_id, turn_number, RATINGS[rating_label], text)

    send_feedback.click(
        feedback,
        inputs=[session, turn, rating, comment],
        outputs=[feedback_status],
        api_name="chat_feedback",
    )

    def like(
        session_id: str, turns: dict[str, int], text: str, data: gr.LikeData, request: gr.Request
    ) -> tuple[str, int]:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_number = (turns or {}).get(str(index))
        if turn_number is None:
            raise user_error("この回答は評価できません（以前の画面の回答です）")
        rating = 1 if data.liked is True or data.liked == "Like" else -1
        viewer = current_viewer(context, request)
        return _record_feedback(context, viewer, session_id, turn_number, rating, text), turn_number

    # Needs the browser's like event data, so it is left out of the API listing (`chat_feedback` is the API).
    chatbot.like(
        like,
        inputs=[session, turn_map, comment],
        outputs=[feedback_status, turn],
        api_name="chat_like",
        api_visibility="undocumented",
    )

    def reset(_: str) -> tuple[Any, ...]:
        return new_session_id("chat"), [], empty_sources_html(), _suggestions_update([]), 0, {}, None, ""

    new_session.click(
        reset,
        inputs=[session],
        outputs=[session, chatbot, sources, suggestions, turn, turn_map, result, feedback_status],
        api_name="chat_new_session",
    )
    def load_history(session_id: str, request: gr.Request) -> tuple[Any, ...]:
        return _resume(context, current_viewer(context, request), session_id)

    resume.click(
        load_history,
        inputs=[session],
        outputs=[chatbot, sources, suggestions, turn, turn_map, result],
        api_name="chat_history",
    )
    return session
