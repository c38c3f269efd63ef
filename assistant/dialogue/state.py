"""The conversation state: slots carried across turns, updated by every reading.

Each affair named in a consultation has its own state (its cases, its notification facts). A correction
overrides; a short reply fills the slot that the last question asked; a follow-up is answered for the intent it
asks, using the state. The state is plain data, stored with every turn, so it survives a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from assistant.advise.notify import AffairFacts
from assistant.understand.reading import AffairMention, Reading

STATE_VERSION = 2
# Slots a clarifying question can ask for, besides the notification questions of corpus/notification-rules.yaml.
SLOT_AFFAIR = "affair"  # which affair the consultation is about
SLOT_TARGET = "target"  # the target group of an umbrella name (福祉医療 → whose medical costs?)
MAX_AFFAIR_TEXT = 600


@dataclass
class AffairState:
    text: str
    cases: list[int] = field(default_factory=list)
    statutory: bool = False
    statutory_names: list[str] = field(default_factory=list)
    no_fit: bool = False
    ambiguous: bool = False
    clarifying_question: str | None = None
    facts: AffairFacts = field(default_factory=AffairFacts)
    notification_type: str | None = None

    def absorb(self, mention: AffairMention) -> None:
        """A later mention of the same affair: its text adds detail; a specific reading replaces an ambiguous one."""
        if mention.text and mention.text not in self.text:
            self.text = (self.text + "\n" + mention.text)[-MAX_AFFAIR_TEXT:]
        if mention.cases and (not mention.ambiguous or self.ambiguous or not self.cases):
            self.cases = list(mention.cases)
            self.ambiguous = mention.ambiguous
            self.clarifying_question = mention.clarifying_question
        self.statutory = mention.statutory or (self.statutory and not mention.cases)
        self.statutory_names = list(mention.statutory_names) or self.statutory_names
        self.no_fit = mention.no_fit and not self.cases

    @classmethod
    def from_mention(cls, mention: AffairMention) -> "AffairState":
        return cls(
            text=mention.text[:MAX_AFFAIR_TEXT],
            cases=list(mention.cases),
            statutory=mention.statutory,
            statutory_names=list(mention.statutory_names),
            no_fit=mention.no_fit,
            ambiguous=mention.ambiguous,
            clarifying_question=mention.clarifying_question,
        )

    def as_mention(self) -> AffairMention:
        return AffairMention(
            text=self.text, cases=tuple(self.cases), statutory=self.statutory,
            statutory_names=tuple(self.statutory_names), no_fit=self.no_fit, ambiguous=self.ambiguous,
            clarifying_question=self.clarifying_question,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["facts"] = self.facts.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AffairState":
        values = dict(data)
        values["facts"] = AffairFacts.from_dict(values.get("facts") or {})
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass
class Pending:
    """The assistant's own open question: which slot it asked for, for which intent and affair."""

    slot: str
    question: str
    intent: str
    affair: int | None
    context_text: str = ""  # the message that led to the question (read again with the reply)


@dataclass
class ConversationState:
    affairs: list[AffairState] = field(default_factory=list)
    focus: int | None = None
    pending: Pending | None = None
    last_intents: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # slots already asked (never ask the same one twice)
    asker: str = "staff"
    version: int = STATE_VERSION

    @property
    def affair(self) -> AffairState | None:
        return self.affairs[self.focus] if self.focus is not None and self.focus < len(self.affairs) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "affairs": [a.to_dict() for a in self.affairs],
            "focus": self.focus,
            "pending": asdict(self.pending) if self.pending else None,
            "last_intents": self.last_intents,
            "asked": self.asked,
            "asker": self.asker,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ConversationState":
        if not data or data.get("version") != STATE_VERSION:
            return cls()  # a state of an older format starts afresh (the turns themselves are kept)
        pending = data.get("pending")
        return cls(
            affairs=[AffairState.from_dict(a) for a in data.get("affairs", [])],
            focus=data.get("focus"),
            pending=Pending(**pending) if pending else None,
            last_intents=list(data.get("last_intents", [])),
            asked=list(data.get("asked", [])),
            asker=data.get("asker", "staff"),
        )


@dataclass(frozen=True)
class TurnFocus:
    """What the turn must answer, after the state was updated."""

    intents: tuple[str, ...]
    filled_slot: str | None = None  # the pending slot this message answered
    unsure: bool = False  # the user could not answer the pending question


Reclassify = Callable[[str], AffairMention]


def asked_key(slot: str, affair: int | None) -> str:
    return f"{slot}@{affair}"


def _matching_affair(state: ConversationState, mention: AffairMention) -> int | None:
    for index, affair in enumerate(state.affairs):
        if mention.cases and affair.cases and set(mention.cases[:1]) & set(affair.cases):
            return index
        if mention.statutory and affair.statutory and set(mention.statutory_names) & set(affair.statutory_names):
            return index
        if mention.cases and affair.ambiguous and set(mention.cases[:1]) & set(affair.cases):
            return index
    return None


AFFAIR_QUESTIONS = frozenset({"case_fit", "statutory", "notification_type", "analogous_affair"})


def _take_mentions(state: ConversationState, reading: Reading, correction: bool) -> None:
    focus = None
    about_affair = bool(AFFAIR_QUESTIONS & set(reading.intents))
    for mention in reading.affairs:
        if mention.statutory and not mention.cases and state.affairs and not about_affair:
            continue  # e.g. the analogous statutory affair named in a question about the affair in focus
        index = _matching_affair(state, mention)
        if index is None:
            state.affairs.append(AffairState.from_mention(mention))
            index = len(state.affairs) - 1
        else:
            state.affairs[index].absorb(mention)
        if mention.facts is not None:
            affair = state.affairs[index]
            affair.facts = affair.facts.with_reading(mention.facts, correction=correction)
        focus = index  # the last affair named is in focus: a question usually comes after what it is about
    if focus is not None:
        state.focus = focus
    if reading.reference is not None and state.affairs:
        state.focus = reading.reference % len(state.affairs)


def _fill_slot(state: ConversationState, reading: Reading, reclassify: Reclassify) -> tuple[str | None, bool]:
    """Apply a reply to the pending question; returns (the slot filled, whether the user was unsure)."""
    pending = state.pending
    if pending is None:
        return None, False
    affair = state.affairs[pending.affair] if pending.affair is not None and pending.affair < len(state.affairs) else None
    polarity = reading.polarity
    if polarity == "unsure":
        return pending.slot, True
    if pending.slot == "existing" and affair is not None:
        existing = reading.facts.existing or {"yes": "yes", "no": "no"}.get(polarity or "")
        if existing:
            affair.facts = replace(affair.facts, existing=existing)  # type: ignore[arg-type]
            return pending.slot, False
    elif pending.slot == "changes" and affair is not None:
        if reading.facts.changes:
            return pending.slot, False
    elif pending.slot == "content_change" and affair is not None:
        content = {"yes": "yes", "no": "no"}.get(polarity or "")
        if reading.facts.changes & {"info_added", "info_removed", "case_added", "case_removed"}:
            content = "yes"
        if content:
            affair.facts = replace(affair.facts, content_change=content)  # type: ignore[arg-type]
            return pending.slot, False
    elif pending.slot == "transfer" and affair is not None:
        affair.facts = replace(affair.facts, transfer_details=True)
        return pending.slot, False
    elif pending.slot in (SLOT_TARGET, SLOT_AFFAIR):
        base = (affair.text if affair is not None and pending.slot == SLOT_TARGET else pending.context_text) + "\n"
        mention = reclassify(base + reading.text)
        if mention.cases or mention.statutory:
            if affair is not None and pending.slot == SLOT_TARGET:
                affair.absorb(replace(mention, text=reading.text))
                affair.cases, affair.ambiguous = list(mention.cases), mention.ambiguous
                affair.clarifying_question = mention.clarifying_question
            else:
                state.affairs.append(AffairState.from_mention(mention))
                state.focus = len(state.affairs) - 1
            return pending.slot, False
    return None, False


def _describe_affair(state: ConversationState, reading: Reading, reclassify: Reclassify) -> str | None:
    """A reply that says more about an affair not yet identified (「対象は外国人の方です」) is read together with
    the message it follows."""
    pending = state.pending
    if pending is None or not pending.context_text or (state.affair is not None and state.affair.cases):
        return None
    if not (reading.has("answer") or reading.has("correction")):
        return None
    mention = reclassify(pending.context_text + "\n" + reading.text)
    if not (mention.cases or mention.statutory):
        return None
    state.affairs.append(AffairState.from_mention(mention))
    state.focus = len(state.affairs) - 1
    return SLOT_AFFAIR


def _correct(state: ConversationState, reading: Reading, reclassify: Reclassify) -> None:
    """A correction without a new affair name may correct the target group: read the affair again with it."""
    affair = state.affair
    if affair is None or reading.affairs:
        return
    mention = reclassify(affair.text + "\n" + reading.text)
    if mention.cases and mention.cases[0] not in affair.cases[:1]:
        affair.cases, affair.ambiguous = list(mention.cases), mention.ambiguous
        affair.clarifying_question = mention.clarifying_question
        affair.text = (affair.text + "\n" + reading.text)[-MAX_AFFAIR_TEXT:]


def states_notification_facts(reading: Reading) -> bool:
    """The message says what changes in a notified affair (a change is about a notification; that linkage is to
    start is not, as in a question about what to do before starting)."""
    return bool(reading.facts.changes) or any(m.facts is not None and m.facts.changes for m in reading.affairs)


def advance(state: ConversationState, reading: Reading, reclassify: Reclassify) -> TurnFocus:
    """Update the state with one reading and say which intents this turn must answer."""
    state.asker = reading.asker if reading.asker == "helpdesk" else state.asker
    if reading.has("out_of_scope") and not reading.affairs and not reading.questions[1:]:
        return TurnFocus(("out_of_scope",))
    had_affairs = bool(state.affairs)
    correction = reading.has("correction")
    _take_mentions(state, reading, correction)
    filled, unsure = _fill_slot(state, reading, reclassify)
    if filled is None and not unsure and not reading.affairs:
        filled = _describe_affair(state, reading, reclassify)
    if correction and filled is None:
        _correct(state, reading, reclassify)
    affair = state.affair
    per_affair = any(m.facts is not None for m in reading.affairs)
    if affair is not None and not reading.facts.empty and not per_affair:
        affair.facts = affair.facts.with_reading(reading.facts, correction=correction)
        if correction and reading.facts.existing:
            affair.notification_type = None
    questions = [i for i in reading.questions if i != "out_of_scope" or not (had_affairs or reading.affairs)]
    if filled or unsure or ((correction or reading.has("answer")) and not questions):
        carried = state.pending.intent if state.pending else (state.last_intents[0] if state.last_intents else "case_fit")
        questions = [carried, *[q for q in questions if q != carried]]
    if not questions:
        questions = ["greeting"] if reading.has("greeting") else list(state.last_intents[:1] or ["case_fit"])
    if "reply_draft" in questions:  # the other questions are the inquiry's, answered inside the draft
        questions = ["reply_draft"]
    elif states_notification_facts(reading) and "notification_type" not in questions and "out_of_scope" not in questions:
        # Facts about the notification were stated: when they decide the type, the answer says it too.
        questions.insert(1, "notification_type")
    return TurnFocus(tuple(questions), filled, unsure)


def after_answer(state: ConversationState, intents: tuple[str, ...], slot: str | None, question: str | None,
                 notification_type: str | None, message: str = "") -> None:
    """Remember what this turn asked and decided."""
    substantive = [i for i in intents if i not in ("greeting", "out_of_scope", "reply_draft")]
    if substantive:
        state.last_intents = substantive
    if notification_type and state.affair is not None:
        state.affair.notification_type = notification_type
    if slot and question:
        state.pending = Pending(slot, question, intents[0] if intents else "case_fit", state.focus, message[-MAX_AFFAIR_TEXT:])
        if asked_key(slot, state.focus) not in state.asked:
            state.asked.append(asked_key(slot, state.focus))
    else:
        state.pending = None
