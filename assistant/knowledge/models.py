"""Typed corpus entries. Every fact-bearing entry carries sources, as-of date and confidence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Confidence = Literal["確認済み", "要確認"]
NotificationCode = Literal["new", "change", "discontinue", "replace"]
# What a checklist item or schedule fact applies to: a notification type, or a statutory affair (no notification).
Applicability = Literal["new", "change", "discontinue", "replace", "statutory"]
NOTIFICATION_CODES: tuple[NotificationCode, ...] = ("new", "change", "discontinue", "replace")
CONFIRMED: Confidence = "確認済み"
UNCONFIRMED: Confidence = "要確認"
UNCONFIRMED_MARK = "【要確認】"


@dataclass(frozen=True)
class TextGroup:
    """Free-text fields of an entry and the confidence that covers them."""

    confidence: Confidence
    texts: tuple[tuple[str, str], ...]  # (field name, text)


def _texts(model: BaseModel, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name in names:
        value = getattr(model, name)
        if isinstance(value, str):
            out.append((name, value))
        elif isinstance(value, list):
            out.extend((f"{name}.{i}", v) for i, v in enumerate(value) if isinstance(v, str))
    return tuple(out)


def _iso_date(value: object) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    try:
        dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"日付は YYYY-MM-DD で書いてください: {value!r}") from exc
    return text


class Strict(BaseModel):
    # The schema is built on first validation: a start that loads the cached knowledge validates nothing.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Sourced(Strict):
    """An entry that states facts. `confidence` covers the fields in TEXT_FIELDS unless a subclass splits them."""

    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ()

    sources: list[str] = Field(min_length=1)
    as_of: str
    confidence: Confidence

    _check_date = field_validator("as_of", mode="before")(_iso_date)

    def text_groups(self) -> list[TextGroup]:
        return [TextGroup(self.confidence, _texts(self, self.TEXT_FIELDS))]


class Source(Strict):
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]*$")
    title: str = Field(min_length=1)
    publisher: str | None = None
    url: str | None = None
    as_of: str | None = None
    as_of_note: str | None = None
    confidence: Confidence  # of the date: 要確認 when the date is an estimate or unknown

    _check_date = field_validator("as_of", mode="before")(_iso_date)

    @model_validator(mode="after")
    def _estimates_are_explained(self) -> "Source":
        if self.as_of is None and self.confidence == CONFIRMED:
            raise ValueError("as_of が null（時点不明）の出典は confidence を要確認にしてください")
        if self.confidence == UNCONFIRMED and not self.as_of_note:
            raise ValueError("時点が推定・不明の出典には as_of_note で理由を書いてください")
        return self


class Case(Sourced):
    """`confidence` covers the descriptive fields; `information_confidence`, when set, covers what is queried from
    whom (information_kinds, information_queriers, information_providers), e.g. as an official case table states it."""

    TEXT_FIELDS: ClassVar[tuple[str, ...]] = (
        "description", "analogous_statutory_affair", "target_persons", "purpose_terms", "benefit", "aliases",
        "example_affairs", "distinguish_from", "notes",
    )
    INFORMATION_FIELDS: ClassVar[tuple[str, ...]] = ("information_kinds", "information_queriers", "information_providers")

    id: int = Field(ge=1)
    seed_label: str
    name: str = Field(min_length=1)
    case_number: str | None = None
    case_number_confidence: Confidence | None = None
    description: str = Field(min_length=1)
    analogous_statutory_affair: str | None = None
    analogous_statutory_confidence: Confidence | None = None
    old_appendix2_item: str | None = None
    target_persons: list[str] = Field(min_length=1)
    purpose_terms: list[str] = Field(default_factory=list)
    benefit: str | None = None
    aliases: list[str] = Field(min_length=1)
    information_kinds: list[str] = Field(default_factory=list)
    information_queriers: list[str] = Field(default_factory=list)  # 情報照会者
    information_providers: list[str] = Field(default_factory=list)  # 情報提供者
    information_confidence: Confidence | None = None
    example_affairs: list[str] = Field(default_factory=list)
    distinguish_from: list[str] = Field(default_factory=list)
    notes: str | None = None

    @property
    def effective_information_confidence(self) -> Confidence:
        return self.information_confidence or self.confidence

    def text_groups(self) -> list[TextGroup]:
        return [
            TextGroup(self.confidence, _texts(self, self.TEXT_FIELDS)),
            TextGroup(self.effective_information_confidence, _texts(self, self.INFORMATION_FIELDS)),
        ]

    @field_validator("case_number", "old_appendix2_item", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _confirmed_case_has_confirmed_parts(self) -> "Case":
        if self.confidence == CONFIRMED:
            for name in ("analogous_statutory_confidence", "case_number_confidence", "information_confidence"):
                if getattr(self, name) == UNCONFIRMED:
                    raise ValueError(f"confidence が確認済みの事例では {name} も確認済みにしてください")
        return self


class CuratedSource(Source):
    """A source named by a correction: an official file or ingested document (and its page), or a citation text.
    Its id is the way a person names it (the file name, with the page), so it reads as is in a case's sources."""

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r\t]+$")
    document: str | None = None  # the ingested document's source key (doc-…), when the source is one
    page: str | None = None


class StatutoryAffair(Sourced):
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("name", "law", "aliases", "linkage_basis", "note")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    law: str | None = None
    aliases: list[str] = Field(min_length=1)
    linkage_basis: str
    related_cases: list[int] = Field(default_factory=list)
    note: str | None = None


class NotificationExample(Strict):
    situation: str
    reason: str


class NotificationType(Sourced):
    """`confidence` covers the definition fields; `examples_confidence` covers the examples and the notes."""

    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("name", "definition", "when", "not_when", "documents", "window", "method")

    type: NotificationCode
    name: str
    definition: str
    when: list[str] = Field(min_length=1)
    not_when: list[str] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)
    window: str
    method: str
    examples: list[NotificationExample] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    examples_confidence: Confidence | None = None

    @property
    def effective_examples_confidence(self) -> Confidence:
        return self.examples_confidence or self.confidence

    def text_groups(self) -> list[TextGroup]:
        examples = tuple(
            pair
            for i, e in enumerate(self.examples)
            for pair in ((f"examples.{i}.situation", e.situation), (f"examples.{i}.reason", e.reason))
        )
        return [
            TextGroup(self.confidence, _texts(self, self.TEXT_FIELDS)),
            TextGroup(self.effective_examples_confidence, examples + _texts(self, ("notes",))),
        ]


class FlowStep(Sourced):
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("name", "description")

    id: str
    name: str
    description: str


def _all_notifications() -> list[Applicability]:
    return list(NOTIFICATION_CODES)


class ScheduleFact(Sourced):
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("fact",)

    id: str
    fact: str
    applies_to: list[Applicability] = Field(default_factory=_all_notifications, min_length=1)
    lead_months: int | None = Field(default=None, ge=1)  # months before the start of linkage (the forms)
    sheet_label: str | None = None  # shown on the 事前相談シート under this label when it applies
    commission_question: str | None = None  # what to ask the commission about it, on the sheet


class Derivation(Strict):
    """How other answers of the checklist conversation decide an item, so that it is not asked."""

    rule: Literal["case", "statutory-check", "notification", "schedule", "same-case", "case-terms", "answer", "all-of"]
    steps: list[str] = Field(default_factory=list)  # the conversation steps or checklist items it reads
    case_field: str | None = None  # the field of the confirmed case it compares with

    @model_validator(mode="after")
    def _fields_fit_the_rule(self) -> "Derivation":
        if self.rule in ("same-case", "case-terms", "answer") and len(self.steps) != 1:
            raise ValueError(f"derive.rule {self.rule} は steps に一つの質問を指定してください")
        if self.rule == "all-of" and not self.steps:
            raise ValueError("derive.rule all-of は steps にチェック項目を指定してください")
        if self.case_field is not None and self.case_field not in Case.model_fields:
            raise ValueError(f"derive.case_field {self.case_field!r} は事例の項目にありません")
        return self


class ChecklistItem(Sourced):
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("label", "question", "why")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    phase: Literal["preparation", "filing", "review", "requirement"]
    label: str
    question: str
    why: str
    page_point: int | None = Field(default=None, ge=1)  # its number (①②…) among the commission page's points
    applies_to: list[Applicability] = Field(default_factory=_all_notifications, min_length=1)
    derive: Derivation | None = None
    commission_question: str | None = None  # what to ask the commission when the answer leaves it 要確認


class Procedure(Strict):
    flow: list[FlowStep] = Field(min_length=1)
    schedule: list[ScheduleFact] = Field(min_length=1)
    checklist: list[ChecklistItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _derivations_name_other_items(self) -> "Procedure":
        ids = {item.id for item in self.checklist}
        for item in self.checklist:
            if item.derive is not None and item.derive.rule == "all-of":
                unknown = [s for s in item.derive.steps if s not in ids or s == item.id]
                if unknown:
                    raise ValueError(f"checklist {item.id}: derive.steps {unknown} は他のチェック項目の id にしてください")
        reads = {i.id: i.derive.steps for i in self.checklist if i.derive is not None and i.derive.rule == "all-of"}
        for start in reads:
            seen, pending = {start}, list(reads[start])
            while pending:
                current = pending.pop()
                if current == start:
                    raise ValueError(f"checklist {start}: derive.steps が循環しています")
                if current not in seen:
                    seen.add(current)
                    pending += reads.get(current, [])
        if sum(1 for fact in self.schedule if fact.lead_months is not None) > 1:
            raise ValueError("schedule: lead_months を持つ項目は一つにしてください")
        return self


class GuidanceSection(Strict):
    heading: str
    text: str


class GuidancePage(Sourced):
    """`confidence` covers every section not named in `section_confidence`."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    sections: list[GuidanceSection] = Field(min_length=1)
    section_confidence: dict[str, Confidence] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _named_sections_exist(self) -> "GuidancePage":
        headings = {s.heading for s in self.sections}
        unknown = [h for h in self.section_confidence if h not in headings]
        if unknown:
            raise ValueError(f"section_confidence に本文にない見出しがあります: {', '.join(unknown)}")
        return self

    def confidence_of(self, section: GuidanceSection) -> Confidence:
        return self.section_confidence.get(section.heading, self.confidence)

    def text_groups(self) -> list[TextGroup]:
        groups = [TextGroup(self.confidence, (("title", self.title),))]
        for number, section in enumerate(self.sections, start=1):
            texts = ((f"sections.{number}.heading", section.heading), (f"sections.{number}.text", section.text))
            groups.append(TextGroup(self.confidence_of(section), texts))
        return groups


class QAPair(Sourced):
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("question", "answer")

    id: str = Field(pattern=r"^qa-[0-9]{3,}$")
    audience: Literal["自治体職員", "ヘルプデスク"]
    question: str
    answer: str
    cases: list[int] = Field(default_factory=list)
    notification_type: NotificationCode | None = None


class RoutingRule(Strict):
    id: str
    label: str
    patterns: list[str] = Field(min_length=1)
    reply: str


class LegalChange(Sourced):
    """A point where the law or its wording changed, so older sources read differently."""

    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("summary",)

    id: str
    old_pattern: str
    changed_on: str
    summary: str

    _check_changed = field_validator("changed_on", mode="before")(_iso_date)


class Signature(Strict):
    all: list[list[str]] = Field(min_length=1)
    weight: float | None = None

    @property
    def effective_weight(self) -> float:
        return self.weight if self.weight is not None else float(len(self.all))


class Umbrella(Strict):
    term: str
    cases: list[int] = Field(min_length=2)
    question: str


class ClassifierConfig(Strict):
    umbrellas: list[Umbrella] = Field(default_factory=list)
    signatures: dict[int, list[Signature]]
    exclude: dict[int, list[str]] = Field(default_factory=dict)
    independent_markers: list[str] = Field(default_factory=list)
    statutory_name_not_followed_by: list[str] = Field(default_factory=list)

    @field_validator("signatures", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {
            case: [{"all": s} if isinstance(s, list) else s for s in (signatures or [])]
            for case, signatures in value.items()
        }


ChangeKind = Literal[
    "info_added", "info_removed", "case_added", "case_removed", "rename", "renumber_typo", "abolished",
    "linkage_stopped", "body_change", "target_change", "norm_form_change",
]
QuestionSlot = Literal["existing", "changes", "content_change", "transfer"]


class NotificationRule(Sourced):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    existing: Literal["yes", "no"] | None = None
    any: list[ChangeKind] = Field(default_factory=list)
    all: list[ChangeKind] = Field(default_factory=list)
    content_change: Literal["yes", "no", "unknown"] | None = None
    type: NotificationCode | None = None
    asks: QuestionSlot | Literal["none"] | None = None
    consult: bool = False
    reason: str

    @field_validator("asks")
    @classmethod
    def _decides_or_asks(cls, value: str | None, info) -> str | None:  # noqa: ANN001
        if value is None and info.data.get("type") is None:
            raise ValueError("a rule names a type or asks a question")
        return value


class NotificationRules(Strict):
    questions: dict[QuestionSlot, str]
    rules: list[NotificationRule] = Field(min_length=1)
