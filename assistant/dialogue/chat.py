"""Multi-turn consultation: per-session state, follow-up resolution, clarifications, streaming.

Each message is masked, then rewritten against the session's remembered context (the affair and
case of earlier turns, the facts stated so far, a pending clarifying question) before it goes to
`Assistant.ask`. The exchange and the new state are committed together, so a session continues
in another process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from assistant.advise.matching import fold
from assistant.advise.notify import advise_notification, is_notification_question
from assistant.answer.compose import DOMAIN_TERMS
from assistant.dialogue.store import DialogueStore, SessionConflict, StoreError
from assistant.knowledge.chunks import NOTIFICATION_NAMES
from assistant.textnorm import mask_personal_data
from assistant.validation import clean_text, validate_question, validate_session_id

KIND = "chat"
FOLLOW_UP_MAX_CHARS = 60
ANSWER_MAX_CHARS = 80
AFFAIR_LABEL_MAX_CHARS = 40
MAX_CONFLICT_RETRIES = 5

Polarity = Literal["yes", "no", "unsure"]

# -- understanding short replies -------------------------------------------------------------------
_LEADING_YES = re.compile(r"^(はい|ええ|うん|そうです|その通り|そのとおり|yes|ok|済|完了|実施済|確認済|公布済|入手済|あります|しています|しました|できています)")
_LEADING_NOT = re.compile(r"^(いいえ|いえ|いや|no)")
_LEADING_NO = re.compile(r"^(まだ|未|ない|なし|無し|ありません|していません|しておりません|できていません)")
_UNSURE = re.compile(r"未定|検討中|わから|分から|わかりません|不明|確認中|要確認|調整中|未確定|たぶん|おそらく|かもしれ|不確か")
_NO = re.compile(r"していません|しておりません|していない|してない|まだです|まだ|未実施|未着手|未了|ありません|できていません|いません|予定|これから|今後")
_YES = re.compile(r"済み|済です|済んで|済ませ|完了|しています|しております|しました|できています|あります|確認しました|実施した|公布した|入手した|そうです")


def reply_polarity(text: str) -> Polarity | None:
    """はい / いいえ / 未定 understood from a free-text reply (None when it says neither)."""
    folded = fold(text).strip("「」。、！!？?・ ")
    if _LEADING_YES.match(folded):
        return "yes"
    if _LEADING_NOT.match(folded):
        return "no"
    if _UNSURE.search(folded):
        return "unsure"
    if _LEADING_NO.match(folded):
        return "no"
    if _NO.search(folded):
        return "no"
    if _YES.search(folded):
        return "yes"
    return None


# Sentences that make the notification advisor see a fact again (checked against its patterns).
FACT_SENTENCES: dict[str, str] = {
    "existing_no": "届出はまだしていません。",
    "existing_yes": "既に届出済みです。",
    "transfer": "事務の所管が移管されます。",
    "scope_change": "対象者を拡大します。",
    "norm_form": "要綱から規則に改めます。",
    "info_change": "照会する情報を追加・削除します。",
    "case_change": "事例を追加・変更します。",
    "stop": "事務を廃止します。",
    "minor": "名称変更・号ずれなどの軽微な修正です。",
    "unchanged_content": "内容は変わりません。",
}
_NEGATED = r"(?!.{0,8}(変わらず|変わりません|変わらない|そのまま|同じ|なし|ありません))"
_CHOICES: list[tuple[str, re.Pattern[str]]] = [
    ("stop", re.compile(r"廃止|やめ|終了|中止|処理しな")),
    ("info_change", re.compile(r"(情報|項目)" + _NEGATED)),
    ("case_change", re.compile(r"事例" + _NEGATED)),
    ("minor", re.compile(r"名称|題名|(?<!番)号|条ずれ|ずれ|ズレ|誤記|誤字|間違")),
]

ClarificationKind = Literal["existing", "what_changes", "does_change", "free"]


def clarification_kind(question: str) -> ClarificationKind:
    if "届出をしていますか" in question:
        return "existing"
    if re.search(r"変わるのは(何|.{0,40}どれ)", question):
        return "what_changes"
    if re.search(r"変わりますか", question):
        return "does_change"
    return "free"


def canonical_answer(kind: ClarificationKind, answer: str) -> str:
    """A fact sentence the advisors understand, derived from a reply to a clarifying question."""
    folded = fold(answer)
    polarity = reply_polarity(answer)
    if kind == "existing":
        if polarity == "yes":
            return FACT_SENTENCES["existing_yes"]
        if polarity == "no":
            return FACT_SENTENCES["existing_no"]
        return ""
    if kind == "does_change":
        if polarity == "yes":
            return FACT_SENTENCES["case_change"] + FACT_SENTENCES["info_change"]
        if polarity == "no":
            return FACT_SENTENCES["unchanged_content"]
        return ""
    if kind == "what_changes":
        return "".join(FACT_SENTENCES[key] for key, pattern in _CHOICES if pattern.search(folded))
    return ""


UNDECIDED_NOTE = "※ いただいた回答だけでは判断がつきませんでした。個人情報保護委員会事務局への事前相談をお勧めします。"


def insert_before_sources(answer: str, note: str) -> str:
    """Add a paragraph to an answer, keeping the source list last."""
    head, marker, sources = answer.partition("\n\n**出典**")
    return f"{head}\n\n{note}{marker}{sources}"


def split_pieces(text: str) -> list[str]:
    """Stream pieces: sentences and lines; joined they give the text back unchanged."""
    return [piece for piece in re.split(r"(?<=[。\n])", text) if piece]


# -- session state -----------------------------------------------------------------------------------
_ANAPHORA = re.compile(
    r"^(それ|その|この|あの|そちら|そこ|では|じゃあ|なら|だと|それで|また|あと|ほかに|他に|で、)|"
    r"それ|その場合|この場合|その事務|この事務|同じ事務|当該|前述|先ほど|さっき|上記"
)
_NOTIFICATION_TOPIC = re.compile(r"届|手続|受付|差替|差し替|変更|新規|中止|期間|様式|提出|書類|いつ|時期|締切|締め切")
_CASE_SUFFIX = re.compile(r"(に関する事務)?(又はこれらに類するその他の事務)?$")


def _empty_state() -> dict[str, Any]:
    return {"affair": None, "cases": [], "notification_type": None, "facts": {}, "pending": None, "answered": []}


_LINKAGE_TAIL = re.compile(r"(で|の|について|に関して|に関する|を|は|が)?(情報)?(連携|届出|届け出|手続).*$")


def affair_label(text: str) -> str:
    """The affair a message names: its first sentence without the request around it."""
    sentence = re.split(r"[。？?！!\n]", text.strip(), maxsplit=1)[0]
    label = _LINKAGE_TAIL.sub("", sentence).strip("、 ")
    return (label or sentence)[:AFFAIR_LABEL_MAX_CHARS]


def merge_facts(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Later statements win for `existing`; other facts accumulate."""
    merged = dict(stored)
    if new.get("existing") is not None:
        merged["existing"] = new["existing"]
    for key, value in new.items():
        if key in {"existing", "unsure", "start"}:
            continue
        if value:
            merged[key] = True
    return merged


def fact_sentences(facts: dict[str, Any]) -> str:
    parts = []
    if facts.get("existing") is False:
        parts.append(FACT_SENTENCES["existing_no"])
    elif facts.get("existing") is True:
        parts.append(FACT_SENTENCES["existing_yes"])
    for key in ("transfer", "scope_change", "norm_form", "info_change", "case_change", "stop", "minor", "unchanged_content"):
        if facts.get(key):
            parts.append(FACT_SENTENCES[key])
    return "".join(parts)


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


@dataclass
class Rewrite:
    question: str
    mode: Literal["standalone", "follow_up", "clarification", "new_topic"]
    own_cases: list[int]
    answered: bool = False  # the message gave a usable answer to the pending question


class ChatService:
    def __init__(self, assistant: Any, *, store: DialogueStore | None = None, phraser: Any = None) -> None:
        self.assistant = assistant
        self.store = store or DialogueStore.for_settings(assistant.settings)
        self._phraser = phraser

    # -- public API ------------------------------------------------------------------------------
    def turn(self, session_id: str, message: str) -> dict[str, Any]:
        """Answer one message; the exchange and the new state are stored together, or not at all.

        Turns of one session take turns within this process; when another process stores a turn
        between this turn's read and its write, the turn is worked out again on the newer state,
        so no turn's context is overwritten.
        """
        session_id = validate_session_id(session_id)
        question = validate_question(message, self.assistant.settings.max_question_chars)
        masked, masked_kinds = mask_personal_data(question)
        with _SESSION_LOCKS.hold(session_id):
            for _attempt in range(MAX_CONFLICT_RETRIES):
                record = self.store.load_session(KIND, session_id)
                state = record.state if record else _empty_state()
                result = self._answer(session_id, masked, masked_kinds, state)
                try:
                    number = self.store.add_exchange(
                        KIND, session_id, masked, result["answer"], result, state,
                        expected_revision=record.revision if record else None,
                    )
                except SessionConflict:
                    continue
                return result | {"turn": number}
        raise SessionConflict(f"セッション {session_id} には同時に多くの質問が届いたため、この質問は記録していません。もう一度送信してください")

    def _answer(self, session_id: str, masked: str, masked_kinds: list[str], state: dict[str, Any]) -> dict[str, Any]:
        """The result of one message against the session's state (which it updates in place)."""
        rewrite = self._rewrite(masked, state)
        result = self.assistant.ask(rewrite.question, known_cases=state["cases"] or None)
        result = self._phrase(rewrite.question, result)
        repeated = self._update_state(state, masked, rewrite, result)
        if repeated:
            result["answer"] = insert_before_sources(result["answer"], UNDECIDED_NOTE)
        if result["notification_type"] is None and rewrite.mode != "new_topic" and not result["needs_clarification"]:
            if rewrite.mode != "standalone" and state["notification_type"] and _NOTIFICATION_TOPIC.search(masked):
                result["notification_type"] = state["notification_type"]
        return result | {
            "session": session_id,
            "rewritten_question": rewrite.question,
            "suggestions": self._suggestions(state, result),
            "masked": sorted(set(masked_kinds) | set(result.get("masked", []))),
            "context": self._context(state),
        }

    def stream(self, session_id: str, message: str) -> Iterator[dict[str, Any]]:
        result = self.turn(session_id, message)
        for piece in split_pieces(result["answer"]):
            yield {"delta": piece}
        yield {"final": result}

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

    def context(self, session_id: str) -> dict[str, Any]:
        record = self.store.load_session(KIND, validate_session_id(session_id))
        return self._context(record.state if record else _empty_state())

    # -- follow-up resolution -----------------------------------------------------------------
    def _own_cases(self, text: str) -> tuple[list[int], bool]:
        """Cases the message itself names, and whether it names an affair at all."""
        classification = self.assistant.classify(text)
        if classification.get("ambiguous"):
            return [], True
        strong = [c["case"] for c in classification["candidates"] if c["reasons"] and "語句の類似" not in c["reasons"][0]]
        cases = [] if classification["statutory"] else strong[:1]
        return cases, bool(cases) or classification["statutory"]

    def _subject(self, state: dict[str, Any]) -> str:
        cases = state["cases"]
        if cases:
            case = self.assistant.knowledge.cases.get(cases[0])
            if case is not None:
                return f"{_CASE_SUFFIX.sub('', case.name)}（事例({case.id})）"
        return state["affair"] or ""

    def _routed_elsewhere(self, message: str) -> bool:
        """The message matches an out-of-scope routing rule: it must not inherit the session's context."""
        return any(re.search(p, message) for rule in self.assistant.knowledge.routing for p in rule.patterns)

    def _rewrite(self, message: str, state: dict[str, Any]) -> Rewrite:
        if self._routed_elsewhere(message):
            return Rewrite(message, "standalone", [])
        own_cases, topical = self._own_cases(message)
        switches = bool(own_cases and state["cases"] and own_cases[0] not in state["cases"])
        pending = state["pending"]
        if pending and not switches and (len(message) <= ANSWER_MAX_CHARS or reply_polarity(message)):
            canonical = canonical_answer(pending["kind"], message)
            answered = bool(canonical) or pending["kind"] == "free" or reply_polarity(message) is not None
            return Rewrite(f"{pending['original']}\n{canonical}{message}", "clarification", own_cases, answered)
        if topical and (switches or not state["cases"]):
            return Rewrite(message, "new_topic", own_cases)
        if not (state["cases"] or state["affair"]):
            return Rewrite(message, "standalone", own_cases)
        short = len(message) <= FOLLOW_UP_MAX_CHARS
        on_topic = DOMAIN_TERMS.search(message) or _NOTIFICATION_TOPIC.search(message)
        if _ANAPHORA.search(message) or (short and not topical and on_topic):
            facts = ""
            if _NOTIFICATION_TOPIC.search(message):
                message_facts = advise_notification(message).facts
                facts = fact_sentences(merge_facts(state["facts"], message_facts))
            name = NOTIFICATION_NAMES.get(state["notification_type"] or "", "")
            body = message.replace("その場合", f"{name}の届出の場合") if name and "その場合" in message else message
            return Rewrite(f"{self._subject(state)}について。{facts}{body}", "follow_up", own_cases)
        return Rewrite(message, "standalone", own_cases)

    def _update_state(self, state: dict[str, Any], message: str, rewrite: Rewrite, result: dict[str, Any]) -> bool:
        """Remember what this turn established; True when a clarification would repeat itself."""
        if result["out_of_scope"]:
            return False
        if rewrite.mode == "new_topic":
            state.update(_empty_state())
            state["affair"] = affair_label(message)
        if result["cases"]:
            state["cases"] = list(result["cases"])
        if is_notification_question(rewrite.question):
            state["facts"] = merge_facts(state["facts"], advise_notification(rewrite.question).facts)
        if result["notification_type"]:
            state["notification_type"] = result["notification_type"]
        question = result["clarifying_question"] if result["needs_clarification"] else None
        if rewrite.answered and state["pending"]:
            state["answered"].append(state["pending"]["question"])
        if question and question in state["answered"]:
            state["pending"] = None
            return True
        state["pending"] = (
            {"question": question, "kind": clarification_kind(question), "original": rewrite.question} if question else None
        )
        return False

    # -- presentation ---------------------------------------------------------------------------
    def _context(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "affair": state["affair"],
            "cases": state["cases"],
            "notification_type": state["notification_type"],
            "facts": state["facts"],
            "pending_question": state["pending"]["question"] if state["pending"] else None,
        }

    @staticmethod
    def _suggestions(state: dict[str, Any], result: dict[str, Any]) -> list[str]:
        pending = state["pending"]
        if pending:
            if pending["kind"] in {"existing", "does_change"}:
                return ["はい", "いいえ", "わかりません"]
            if pending["kind"] == "what_changes":
                return ["照会する情報を追加します", "事例を追加します", "名称や号番号の修正だけです", "事務を廃止します"]
            return []
        if result["out_of_scope"]:
            return ["子ども医療費助成で情報連携を始めたい。何の届出が必要ですか？", "届出の受付期間はいつですか？"]
        if state["notification_type"]:
            return ["その場合の受付期間は？", "提出するものは何ですか？", "届出の前に確認することは？"]
        if state["cases"]:
            return ["何の届出が必要ですか？", "準ずる法定事務は何ですか？", "照会できる情報の範囲は？"]
        return ["どの事例に当てはまりますか？", "届出の種類の決め方は？", "手続の流れを教えてください"]

    def _phrase(self, question: str, result: dict[str, Any]) -> dict[str, Any]:
        """The answer phrased by the configured LLM behind guard rails (the composer's when none)."""
        if result["out_of_scope"]:
            return result
        backend = self.assistant.settings.llm_backend
        try:
            phraser = self._get_phraser()
        except ValueError as exc:  # a misconfigured backend must not break the consultation
            return result | {"llm": {"backend": backend, "used": False, "guard": None, "error": str(exc)}}
        if phraser is None:
            return result
        outcome = phraser.phrase(question, result)
        return result | {"answer": outcome.text, "llm": outcome.summary()}

    def _get_phraser(self):  # noqa: ANN202
        if self._phraser is None and self.assistant.settings.llm_backend not in ("", "none"):
            from assistant.llm import Phraser

            self._phraser = Phraser.from_settings(self.assistant.settings, self.assistant.index.by_id)
        return self._phraser
