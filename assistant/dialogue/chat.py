"""Multi-turn consultation: each message is masked, read once, and answered against the session's stored
conversation state (assistant.dialogue.state). The exchange and the new state are committed together, so a
session continues in another process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


from assistant.yamlio import load_yaml

from assistant.answer.compose import result_dict
from assistant.dialogue.consultations import Consultation, ConsultationIndex
from assistant.dialogue.state import ConversationState
from assistant.dialogue.store import DialogueStore, SessionConflict, StoreError
from assistant.privacy import mask_personal_data
from assistant.retrieve.hybrid import Audience, answering_for
from assistant.validation import clean_text, validate_question, validate_session_id

KIND = "chat"
SUGGESTIONS_FILE = "suggestions.yaml"
MAX_SUGGESTIONS = 3
# A message this long that asks for a reply draft carries the inquiry itself; a shorter one refers to the
# consultation so far.
INQUIRY_MIN_CHARS = 80
MAX_CONFLICT_RETRIES = 5


# What a streamed turn says while it works ({"status": ...} events).
STATUS_READING = "質問を読み取っています"
STATUS_ANSWERING = "資料を検索して回答を組み立てています"
STATUS_WRITING = "LLM が回答を書いています"
STATUS_CHECKING = "LLM の回答を出典と照合しています"

Event = dict[str, Any]


class _SessionLocks:
    """One lock per session id in use (created on demand, dropped when no turn holds or waits for it)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]


_SESSION_LOCKS = _SessionLocks()


class ChatService:
    def __init__(self, assistant: Any, *, store: DialogueStore | None = None, phraser: Any = None) -> None:
        self.assistant = assistant
        self.store = store or DialogueStore.for_settings(assistant.settings)
        self._phraser = phraser
        self._consultations: ConsultationIndex | None = None
        path = assistant.settings.corpus_dir / SUGGESTIONS_FILE
        self._suggestions = load_yaml(path.read_text(encoding="utf-8")) if path.is_file() else {}

    # -- public API ------------------------------------------------------------------------------
    def turn(
        self, session_id: str, message: str, *, holder: str | None = None, audience: Audience | None = None,
        seen_turns: int | None = None,
    ) -> dict[str, Any]:
        """Answer one message; the exchange and the new state are stored together, or not at all.

        Turns of one session take turns within this process; when another process stores a turn
        between this turn's read and its write, the turn is worked out again on the newer state,
        so no turn's context is overwritten. `holder` lists the session among the holder's
        consultations; `audience` limits the material searched (assistant.retrieve.hybrid).

        `seen_turns` is the last turn the asker has received. When the session already holds the turn after it,
        with this same message, the message was sent again after its answer was lost on the way (a connection
        cut, a worker that stopped): that stored turn is returned, marked `replayed`, and nothing new is stored.
        """
        final: dict[str, Any] | None = None
        for event in self._run(session_id, message, holder, audience, streaming=False, seen_turns=seen_turns):
            final = event.get("final", final)
        assert final is not None
        return final

    def stream(
        self, session_id: str, message: str, *, holder: str | None = None, audience: Audience | None = None,
        seen_turns: int | None = None,
    ) -> Iterator[Event]:
        """The turn as events: {"status": text} while working, {"delta": text} for each piece an LLM writes
        (only when one is configured), then {"final": result}, whose answer replaces what was streamed."""
        yield from self._run(session_id, message, holder, audience, streaming=True, seen_turns=seen_turns)

    def _run(
        self, session_id: str, message: str, holder: str | None, audience: Audience | None, *, streaming: bool,
        seen_turns: int | None = None,
    ) -> Iterator[Event]:
        session_id = validate_session_id(session_id)
        question = validate_question(message, self.assistant.settings.max_question_chars)
        masked, masked_kinds = mask_personal_data(question)
        yield {"status": STATUS_READING}
        reading = self.assistant.read(masked)
        with _SESSION_LOCKS.hold(session_id):
            for attempt in range(MAX_CONFLICT_RETRIES):
                replayed = self._stored_reply(session_id, masked, seen_turns)
                if replayed is not None:
                    yield {"final": replayed}
                    return
                record = self.store.load_session(KIND, session_id)
                state = ConversationState.from_dict(record.state if record else None)
                yield {"status": STATUS_ANSWERING}
                with answering_for(audience):
                    answer, result = self._compose(session_id, reading, masked_kinds, state)
                # Only the first attempt streams: a retry after a conflict is phrased in one go.
                result = yield from self._phrase(reading.text, answer, result, streaming=streaming and attempt == 0)
                result |= {
                    "session": session_id,
                    "suggestions": self._suggest(state, answer),
                    "context": self._context(state),
                    "interpretation": self._interpretation(state, answer),
                }
                try:
                    number = self.store.add_exchange(
                        KIND, session_id, masked, result["answer"], result, state.to_dict(),
                        expected_revision=record.revision if record else None,
                    )
                except SessionConflict:
                    continue
                if holder:
                    self.consultations.touch(holder, session_id, masked)
                yield {"final": result | {"turn": number}}
                return
        raise SessionConflict(f"セッション {session_id} には同時に多くの質問が届いたため、この質問は記録していません。もう一度送信してください")

    def _stored_reply(self, session_id: str, masked: str, seen_turns: int | None) -> dict[str, Any] | None:
        """The stored result of the turn after `seen_turns`, when that turn asked this same (masked) message."""
        if seen_turns is None or self.store.turn_count(KIND, session_id) <= seen_turns:
            return None
        wanted = seen_turns + 1
        stored = {t.role: t for t in self.store.turns(KIND, session_id) if t.turn == wanted}
        user, reply = stored.get("user"), stored.get("assistant")
        if user is None or reply is None or user.text != masked or not isinstance(reply.result, dict):
            return None
        return reply.result | {"turn": wanted, "replayed": True}

    def _compose(
        self, session_id: str, reading: Any, masked_kinds: list[str], state: ConversationState
    ) -> tuple[Any, dict[str, Any]]:
        """The composer's answer to one reading against the session's state (which it updates in place)."""
        answer, _focus = self.assistant.answerer.respond(reading, state)
        if answer.reply_draft_requested:
            answer.draft = self._draft(session_id, reading.text)
        return answer, result_dict(answer, reading, masked_kinds)

    @property
    def consultations(self) -> ConsultationIndex:
        if self._consultations is None:
            self._consultations = ConsultationIndex(self.store.url)
        return self._consultations

    def consultations_of(self, holder: str) -> list[Consultation]:
        """The holder's consultations, most recently used first."""
        return self.consultations.list(holder)

    def _interpretation(self, state: ConversationState, answer: Any) -> str:
        """How the message was understood, in words: the question it was taken to ask and the affair."""
        names = self.assistant.reader_model.labels.intents
        asked = "・".join(f"「{names[i]}」" for i in answer.intents if i in names and i not in ("answer", "greeting"))
        affair = state.affair
        about = f"（事例({affair.cases[0]})の事務について）" if affair is not None and affair.cases and not answer.out_of_scope else ""
        return f"{asked}のご質問として回答しました{about}" if asked else ""

    def history(self, session_id: str) -> list[dict[str, Any]]:
        session_id = validate_session_id(session_id)
        return [
            {"turn": t.turn, "role": t.role, "text": t.text, "result": t.result}
            for t in self.store.turns(KIND, session_id)
        ]

    def feedback(self, session_id: str, turn: int, rating: int, comment: str = "") -> None:
        session_id = validate_session_id(session_id)
        if rating not in (1, -1):
            raise StoreError("評価は +1（役に立った）または -1（役に立たなかった）で指定してください")
        if not isinstance(turn, int) or not 1 <= turn <= self.store.turn_count(KIND, session_id):
            raise StoreError(f"セッション {session_id} にターン {turn} はありません")
        masked_comment, _ = mask_personal_data(clean_text(comment or ""))
        self.store.add_feedback(session_id, turn, rating, masked_comment.strip()[:2000])

    def ratings(self, session_id: str) -> dict[int, int]:
        """Turn → the rating last given on its answer (a later rating or comment replaces an earlier one)."""
        return {f.turn: f.rating for f in self.store.feedback(validate_session_id(session_id))}

    def context(self, session_id: str) -> dict[str, Any]:
        record = self.store.load_session(KIND, validate_session_id(session_id))
        return self._context(ConversationState.from_dict(record.state if record else None))

    # -- reply drafts inside a consultation ----------------------------------------------------------
    def _draft(self, session_id: str, message: str) -> str:
        """A reply draft for the inquiry pasted with the request, or for the consultation's last question."""
        inquiry = message
        if len(message) < INQUIRY_MIN_CHARS:
            earlier = [t.text for t in self.store.turns(KIND, session_id) if t.role == "user"]
            inquiry = "\n".join(earlier[-3:]) if earlier else ""
        if not inquiry.strip():
            return ""
        from assistant.dialogue.reply import ReplyDrafter

        return ReplyDrafter(self.assistant).draft(inquiry)["draft"]

    # -- presentation ---------------------------------------------------------------------------
    @staticmethod
    def _context(state: ConversationState) -> dict[str, Any]:
        affair = state.affair
        return {
            "affairs": [{"text": a.text[:60], "cases": a.cases, "notification_type": a.notification_type,
                         "facts": a.facts.to_dict()} for a in state.affairs],
            "focus": state.focus,
            "cases": affair.cases if affair else [],
            "notification_type": affair.notification_type if affair else None,
            "pending_question": state.pending.question if state.pending else None,
        }

    def _suggest(self, state: ConversationState, answer: Any) -> list[str]:
        """Next questions worth asking: replies to a pending question, else steps not yet covered."""
        replies = self._suggestions.get("replies", {})
        if state.pending is not None:
            return list(replies.get(state.pending.slot, []))[:MAX_SUGGESTIONS]
        if answer.out_of_scope:
            return list(self._suggestions.get("start", []))[:MAX_SUGGESTIONS]
        done = set(state.last_intents) | set(answer.intents)
        following = self._suggestions.get("next", {})
        options = following.get(answer.intents[0] if answer.intents else "", following.get("default", []))
        return [o["text"] for o in options if o.get("intent") not in done][:MAX_SUGGESTIONS]

    def _phrase(self, question: str, answer: Any, result: dict[str, Any], *, streaming: bool) -> Iterator[Event]:
        """The answer phrased by the configured LLM behind guard rails (the composer's when none).

        A generator whose return value is the result: while streaming it yields the model's pieces as
        {"delta": ...} events as they arrive, and the guarded text replaces them in the result."""
        if result["out_of_scope"]:
            return result
        backend = self.assistant.settings.llm_backend
        try:
            phraser = self._get_phraser()
        except ValueError as exc:  # a misconfigured backend must not break the consultation
            return result | {"llm": {"backend": backend, "used": False, "guard": None, "error": str(exc)}}
        if phraser is None:
            return result
        if not streaming:
            outcome = phraser.phrase(question, answer)
            return result | {"answer": outcome.text, "llm": outcome.summary()}
        yield {"status": STATUS_WRITING}
        streamed: list[str] = []
        outcome = None
        for item in phraser.stream(question, answer):
            if isinstance(item, str):
                streamed.append(item)
                yield {"delta": item}
            else:
                outcome = item
        assert outcome is not None
        if streamed:
            yield {"status": STATUS_CHECKING}
        summary = outcome.summary() | {"streamed": True, "replaced": outcome.text != "".join(streamed)}
        return result | {"answer": outcome.text, "llm": summary}

    def _get_phraser(self):  # noqa: ANN202
        if self._phraser is None and self.assistant.settings.llm_backend not in ("", "none"):
            from assistant.llm import Phraser

            self._phraser = Phraser.from_settings(self.assistant.settings, self.assistant.index.by_id)
        return self._phraser
