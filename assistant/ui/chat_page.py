"""相談チャット: the consultation list, streamed answers whose [n] open their sources, per-message feedback."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from assistant.audit import CHAT, source_ids
from assistant.dialogue.chat import KIND
from assistant.dialogue.consultations import account_holder, browser_holder
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
from assistant.ui.render import answer_markdown, citations_html, empty_sources_html, esc, markdown_text, masked_note
from assistant.validation import InputError

RATING_GOOD = "👍 役に立った"
RATING_BAD = "👎 役に立たなかった"
RATINGS: dict[str, int] = {RATING_GOOD: 1, RATING_BAD: -1}
LIKE_VALUES = {1: "Like", -1: "Dislike"}
MAX_SUGGESTIONS = 5
BROWSER_KEY = "assistant-consultations"
EMPTY_HINT = "質問を入力してから送信してください（Enter で送信、Shift+Enter で改行）。"
PLACEHOLDER = "質問を入力して Enter で送信（Shift+Enter で改行）"

FAILED_ANSWER = "（回答を作成できませんでした。表示されたエラーの内容をご確認ください）"

Message = dict[str, Any]


@dataclass(frozen=True)
class ChatPage:
    """The components the app's load event fills in."""

    session: gr.Textbox
    browser: gr.BrowserState
    conversations: gr.Radio


WORKING_MARK = "⏳ "


def _working(status: str) -> str:
    return f"{WORKING_MARK}{status}…"


def _is_placeholder(message: Message) -> bool:
    """An answer that never came: the working notice a cut connection left, or the failure notice."""
    text = _text_of(message)
    return message.get("role") == "assistant" and (text.startswith(WORKING_MARK) or text == FAILED_ANSWER)


def _text_of(message: Message) -> str:
    """A message's text, whether the page sent it as a string or as a list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _interpretation(result: dict[str, Any]) -> str:
    """How the message was understood (which question, about which affair), as the service reports it."""
    understood = str(result.get("interpretation") or "").strip()
    return f'<div class="interpretation">{esc(understood)}</div>' if understood else ""


def _suggestions_update(suggestions: list[str]) -> gr.Dataset:
    samples = [[s] for s in suggestions[:MAX_SUGGESTIONS] if s]
    return gr.Dataset(samples=samples, visible=bool(samples))


def _holder(viewer: Viewer, browser: str | None) -> str | None:
    """Whose consultation list this is: the account when logged in, else the browser's stored id."""
    if viewer.owner is not None:
        return account_holder(viewer.owner)
    try:
        return browser_holder(browser or "")
    except InputError:
        return None


def _conversation_choices(context: UIContext, holder: str | None) -> list[tuple[str, str]]:
    if holder is None:
        return []
    listed = context.chat.consultations_of(holder)
    return [(f"{c.title}（{c.updated_at:%m/%d %H:%M}）", c.session_id) for c in listed]


def _conversations_update(context: UIContext, holder: str | None, selected: str | None) -> gr.Radio:
    choices = _conversation_choices(context, holder)
    value = selected if selected in {value for _label, value in choices} else None
    return gr.Radio(choices=choices, value=value)


def _own_session(context: UIContext, viewer: Viewer, session_id: str) -> str:
    session = require_session(session_id)
    require_owner(context, viewer, KIND, session)
    return session


def _sources_for(context: UIContext, result: dict[str, Any], turn: int, active: int | None = None) -> str:
    heading = f"{turn} 番目の回答の出典" if turn else ""
    return _interpretation(result) + citations_html(
        result.get("citations") or [], source_lookup(context), active=active, heading=heading
    )


def _last_turn_shown(messages: list[Message], turn_map: dict[str, int] | None) -> int:
    """The last turn this page has received: from its turn map, else (a page whose worker stopped, or an API
    caller) from the answers it shows."""
    if turn_map:
        return max(int(turn) for turn in turn_map.values())
    return sum(1 for m in messages if m.get("role") == "assistant" and not _is_placeholder(m))


def _without_lost_exchange(messages: list[Message]) -> list[Message]:
    """The history without a last question whose answer never came (it is being sent again)."""
    if len(messages) >= 2 and _is_placeholder(messages[-1]) and messages[-2].get("role") == "user":
        return messages[:-2]
    return messages


def _stream_answer(
    context: UIContext,
    viewer: Viewer,
    session_id: str,
    message: str,
    history: list[Message] | None,
    turn_map: dict[str, int] | None,
    browser: str | None,
) -> Iterator[tuple[Any, ...]]:
    """Yield (chatbot, message box, sources, suggestions, conversations, feedback panel, turn map, result)."""
    skip = gr.skip()
    if not (message or "").strip():  # nothing to ask: a hint, and the page stays as it is
        gr.Info(EMPTY_HINT, title="お知らせ")
        yield (skip,) * 8
        return
    session = require_session(session_id)
    with friendly_errors():
        question = validate_question(message, context.settings.max_question_chars)
    require_owner(context, viewer, KIND, session)
    holder = _holder(viewer, browser)
    messages: list[Message] = _without_lost_exchange([dict(m) for m in (history or [])])
    seen = _last_turn_shown(messages, turn_map)
    messages.append({"role": "user", "content": markdown_text(question)})
    messages.append({"role": "assistant", "content": _working("回答を準備しています")})
    turns = dict(turn_map or {})
    yield messages, "", skip, skip, skip, skip, skip, skip
    final: dict[str, Any] | None = None
    text = ""
    try:
        with friendly_errors():
            events = context.chat.stream(session, question, holder=holder, audience=viewer.audience, seen_turns=seen)
            for event in events:
                if "status" in event and not text:
                    messages[-1] = {"role": "assistant", "content": _working(str(event["status"]))}
                elif "delta" in event:
                    text += str(event["delta"])
                    messages[-1] = {"role": "assistant", "content": markdown_text(text)}
                elif "final" in event:
                    final = dict(event["final"])
                    continue
                yield messages, skip, skip, skip, skip, skip, skip, skip
        if final is None:
            raise user_error("回答を作成できませんでした。もう一度お試しください")
    except gr.Error:
        messages[-1] = {"role": "assistant", "content": FAILED_ANSWER}
        yield messages, skip, skip, skip, skip, skip, skip, skip
        raise
    turn = int(final.get("turn") or 0)
    messages[-1] = {"role": "assistant", "content": answer_markdown(final.get("answer") or text, turn)}
    if not (final.get("replayed") and context.audit.recorded(CHAT, session, turn)):
        context.audit.record(
            CHAT, viewer.actor(), question=question, sources=source_ids(final.get("citations") or []),
            session_id=session, turn=turn,
        )
    turns[str(len(messages) - 1)] = turn
    if final.get("masked"):
        gr.Warning(masked_note(final["masked"]), title="個人情報のマスク")
    suggestions = [str(s) for s in final.get("suggestions") or []]
    yield (
        messages, "", _sources_for(context, final, turn), _suggestions_update(suggestions),
        _conversations_update(context, holder, session), gr.Group(visible=False), turns, final,
    )


def _history(context: UIContext, session: str) -> tuple[list[Message], dict[str, int], dict[str, Any] | None, list]:
    """The stored consultation as chat messages, the message → turn map, the last result and the ratings."""
    with friendly_errors():
        entries = context.chat.history(session)
        ratings = context.chat.ratings(session)
    messages: list[Message] = []
    turn_map: dict[str, int] = {}
    likes: list[str | None] = []
    last: dict[str, Any] | None = None
    for entry in entries:
        turn = int(entry.get("turn") or 0)
        if entry.get("role") == "user":
            messages.append({"role": "user", "content": markdown_text(entry.get("text") or "")})
            continue
        messages.append({"role": "assistant", "content": answer_markdown(entry.get("text") or "", turn)})
        turn_map[str(len(messages) - 1)] = turn
        likes.append(LIKE_VALUES.get(ratings.get(turn, 0)))
        last = entry.get("result") if isinstance(entry.get("result"), dict) else last
    return messages, turn_map, last, likes


def _resume(context: UIContext, viewer: Viewer, session_id: str) -> tuple[Any, ...]:
    """(chatbot, sources, suggestions, feedback panel, turn map, result) rebuilt from the stored session."""
    session = _own_session(context, viewer, session_id)
    messages, turn_map, last, likes = _history(context, session)
    if not messages:
        gr.Info(f"セッション {session} の相談履歴はありません。このまま質問すると新しく始まります。", title="お知らせ")
    chat = gr.Chatbot(value=messages, feedback_value=likes)
    if last is None:
        return chat, empty_sources_html(), _suggestions_update([]), gr.Group(visible=False), turn_map, None
    turn = max(turn_map.values(), default=0)
    return (
        chat,
        _sources_for(context, last, turn),
        _suggestions_update([str(s) for s in last.get("suggestions") or []]),
        gr.Group(visible=False),
        turn_map,
        last,
    )


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


def _open_source(context: UIContext, viewer: Viewer, session_id: str, target: str) -> str:
    """The sources panel for answer `turn` with source `number` opened (target "turn:number")."""
    session = _own_session(context, viewer, session_id)
    try:
        turn, number = (int(part) for part in (target or "").split(":"))
    except ValueError as exc:
        raise user_error("開く出典を「回答の番号:出典の番号」で指定してください") from exc
    with friendly_errors():
        entry = next(
            (e for e in context.chat.history(session) if e.get("role") == "assistant" and e.get("turn") == turn), None
        )
    result = entry.get("result") if entry else None
    if not isinstance(result, dict):
        raise user_error(f"{turn} 番目の回答が見つかりません。相談を開き直してください")
    if not any(int(c.get("number") or 0) == number for c in result.get("citations") or []):
        raise user_error(f"{turn} 番目の回答に出典 [{number}] はありません")
    return _sources_for(context, result, turn, active=number)


def build_chat_page(context: UIContext, demo: gr.Blocks) -> ChatPage:
    """Build the page inside the current tab; the app's load event fills in the session id."""
    gr.Markdown(
        "独自利用事務の情報連携について質問してください。回答には根拠資料（出典）が付きます。"
        "回答中の [1] などの番号を押すと、その出典の該当箇所を表示します。"
        "【要確認】の記載は公式資料で確認できていない事項を含みます。"
    )
    browser = gr.BrowserState("", storage_key=BROWSER_KEY)
    with gr.Row(elem_id="chat-layout"):
        with gr.Column(scale=1, min_width=200, elem_id="chat-list-column"):
            new_consultation = gr.Button("＋ 新しい相談", variant="secondary", elem_id="chat-new")
            conversations = gr.Radio(
                choices=[], label="これまでの相談（クリックで再開）", elem_id="chat-conversations", interactive=True
            )
        with gr.Column(scale=4, min_width=320):
            chatbot = gr.Chatbot(
                label="相談",
                height=520,
                elem_id="chatbot",
                placeholder="例: 「子どもの医療費助成で住民税の情報を照会したい。届出は必要ですか？」",
                feedback_options=("Like", "Dislike"),
                buttons=["copy"],
                autoscroll=False,  # the page shows the start of the new answer instead (browser.js)
            )
            with gr.Group(visible=False, elem_id="chat-feedback") as feedback_panel:
                feedback_heading = gr.Markdown(elem_id="chat-feedback-status")
                with gr.Row():
                    comment = gr.Textbox(
                        label="コメント（任意）", lines=2, scale=4,
                        placeholder="どこが役に立ったか、何が足りなかったか", elem_id="chat-feedback-comment",
                    )
                    send_comment = gr.Button("コメントを送る", scale=1, elem_id="chat-feedback-send")
            with gr.Row():
                message = gr.Textbox(
                    label="質問",
                    placeholder=PLACEHOLDER,
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
            with gr.Accordion("セッション", open=False):
                session = gr.Textbox(label="セッション ID（同じ ID で相談を続けられます）", elem_id="chat-session")
                resume = gr.Button("この ID の相談を再開", elem_id="chat-resume")
        with gr.Column(scale=3, min_width=300, elem_id="chat-sources-column"):
            gr.Markdown("#### 出典")
            sources = gr.HTML(empty_sources_html(), label="出典", elem_id="chat-sources")
            with gr.Accordion("回答の詳細データ（JSON）", open=False):
                result = gr.JSON(label="回答")
    turn_map = gr.State({})
    feedback_turn = gr.State(0)
    feedback_rating = gr.State(0)
    cite_target = gr.Textbox(visible="hidden", elem_id="chat-cite-target", label="開く出典")
    cite_open = gr.Button("出典を開く", visible="hidden", elem_id="chat-cite-open")

    outputs = [chatbot, message, sources, suggestions, conversations, feedback_panel, turn_map, result]
    answering: dict[str, Any] = {
        "concurrency_id": ANSWER_GROUP, "concurrency_limit": ANSWER_LIMIT, "show_progress": "hidden",
    }

    # The browser id is optional for API callers (their consultations are then not listed).
    def ask(
        session_id: str, text: str, history: list[Message], turns: dict[str, int], token: str | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[Any, ...]]:
        viewer = current_viewer(context, request)
        yield from _stream_answer(context, viewer, session_id, text, history, turns, token)

    def ask_suggestion(
        session_id: str, sample: list[str] | str, history: list[Message], turns: dict[str, int],
        token: str | None = None, request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[Any, ...]]:
        text = sample[0] if isinstance(sample, list) and sample else str(sample or "")
        yield from _stream_answer(context, current_viewer(context, request), session_id, text, history, turns, token)

    show_start = "() => window.assistantShowLatest?.()"  # the start of the new answer, not the source list
    gr.on(
        triggers=[message.submit, send.click],
        fn=ask,
        inputs=[session, message, chatbot, turn_map, browser],
        outputs=outputs,
        api_name="chat",
        **answering,
    ).then(None, js=show_start)
    suggestions.click(
        ask_suggestion,
        inputs=[session, suggestions, chatbot, turn_map, browser],
        outputs=outputs,
        api_name="chat_suggestion",
        **answering,
    ).then(None, js=show_start)

    # -- feedback on the message it is given on ------------------------------------------------------
    def like(session_id: str, turns: dict[str, int], data: gr.LikeData, request: gr.Request) -> tuple[Any, ...]:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_number = (turns or {}).get(str(index))
        if turn_number is None:
            raise user_error("この回答は評価できません（以前の画面の回答です）")
        if data.liked in (True, "Like"):
            rating = 1
        elif data.liked in (False, "Dislike"):
            rating = -1
        else:  # the rating was taken back: nothing to record
            return gr.Group(visible=False), gr.skip(), 0, 0, ""
        viewer = current_viewer(context, request)
        status = _record_feedback(context, viewer, session_id, turn_number, rating, "")
        heading = f"**{status}** 理由があればコメントを送ってください（任意）。"
        return gr.Group(visible=True), heading, turn_number, rating, ""

    # Needs the browser's like event data, so it is left out of the API listing (`chat_feedback` is the API).
    chatbot.like(
        like,
        inputs=[session, turn_map],
        outputs=[feedback_panel, feedback_heading, feedback_turn, feedback_rating, comment],
        api_name="chat_like",
        api_visibility="undocumented",
        show_progress="hidden",
    ).then(None, js="() => document.querySelector('#chat-feedback-comment textarea')?.focus()")

    def add_comment(session_id: str, turn_number: int, rating: int, text: str, request: gr.Request) -> tuple[str, str]:
        if not (text or "").strip():
            gr.Info("コメントを入力してから送ってください。", title="お知らせ")
            return gr.skip(), gr.skip()
        status = _record_feedback(context, current_viewer(context, request), session_id, turn_number, rating, text)
        return f"**{status}** コメントも記録しました。", ""

    send_comment.click(
        add_comment,
        inputs=[session, feedback_turn, feedback_rating, comment],
        outputs=[feedback_heading, comment],
        api_name="chat_feedback_comment",
        api_visibility="undocumented",
    )

    def feedback(session_id: str, turn_number: float, rating_label: str, text: str, request: gr.Request) -> str:
        """Rate answer `turn_number` of the session (👍 役に立った / 👎 役に立たなかった), with an optional comment."""
        if rating_label not in RATINGS:
            raise user_error(f"評価は {' / '.join(RATINGS)} から選んでください")
        viewer = current_viewer(context, request)
        return _record_feedback(context, viewer, session_id, turn_number, RATINGS[rating_label], text)

    gr.api(feedback, api_name="chat_feedback")

    # -- a cited source, for the answer whose marker was clicked -----------------------------------
    def open_source(session_id: str, target: str, request: gr.Request) -> str:
        return _open_source(context, current_viewer(context, request), session_id, target)

    cite_open.click(
        open_source, inputs=[session, cite_target], outputs=[sources], api_name="chat_source", show_progress="hidden"
    ).then(None, js="() => window.assistantShowSource?.()")

    # -- consultations: new, listed, resumed ---------------------------------------------------------
    def reset(token: str | None = None, request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        holder = _holder(current_viewer(context, request), token)
        return (
            new_session_id("chat"), [], empty_sources_html(), _suggestions_update([]),
            _conversations_update(context, holder, None), gr.Group(visible=False), {}, None,
        )

    reset_outputs = [session, chatbot, sources, suggestions, conversations, feedback_panel, turn_map, result]
    new_consultation.click(reset, inputs=[browser], outputs=reset_outputs, api_name="chat_new_session")
    # Gradio's trash icon empties the screen; the next question starts a new consultation, not the old one.
    chatbot.clear(reset, inputs=[browser], outputs=reset_outputs, api_name="chat_clear", api_visibility="undocumented")

    def load_history(session_id: str, request: gr.Request) -> tuple[Any, ...]:
        return _resume(context, current_viewer(context, request), session_id)

    resume_outputs = [chatbot, sources, suggestions, feedback_panel, turn_map, result]
    resume.click(load_history, inputs=[session], outputs=resume_outputs, api_name="chat_history")

    def pick(chosen: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not chosen:
            return (gr.skip(),) * (len(resume_outputs) + 1)
        return (chosen, *_resume(context, current_viewer(context, request), chosen))

    conversations.input(
        pick, inputs=[conversations], outputs=[session, *resume_outputs], api_name="chat_open",
        api_visibility="undocumented",
    )

    def start(token: str, request: gr.Request) -> tuple[Any, gr.Radio]:
        """The browser's id for its consultation list (made on its first visit) and the list itself."""
        viewer = current_viewer(context, request)
        kept = token if _holder(viewer, token) is not None else secrets.token_urlsafe(18)
        return kept, _conversations_update(context, _holder(viewer, kept), None)

    demo.load(start, inputs=[browser], outputs=[browser, conversations], api_name="chat_start",
              api_visibility="undocumented", show_progress="hidden")
    return ChatPage(session=session, browser=browser, conversations=conversations)
