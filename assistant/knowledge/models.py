"""Typed corpus entries. Every fact-bearing entry carries sources, as-of date and confidence."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Confidence = Literal["確認済み", "要確認"]
NotificationCode = Literal["new", "change", "discontinue", "replace"]
CONFIRMED: Confidence = "確認済み"
UNCONFIRMED: Confidence = "要確認"


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
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Sourced(Strict):
    sources: list[str] = Field(min_length=1)
    as_of: str
    confidence: Confidence

    _check_date = field_validator("as_of", mode="before")(_iso_date)


class Source(Strict):
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]*$")
    title: str = Field(min_length=1)
    publisher: str | None = None
    url: str | None = None
    as_of: str | None = None
    as_of_note: str | None = None
    confidence: Confidence

    _check_date = field_validator("as_of", mode="before")(_iso_date)


class Case(Sourced):
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
    example_affairs: list[str] = Field(default_factory=list)
    distinguish_from: list[str] = Field(default_factory=list)
    notes: str | None = None

    @field_validator("case_number", "old_appendix2_item", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        return None if value is None else str(value)


class StatutoryAffair(Sourced):
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
    type: NotificationCode
    name: str
    definition: str
    when: list[str] = Field(min_length=1)
    not_when: list[str] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)
    window: str
    method: str
    examples: list[NotificationExample] = Field(default_factory=list)


class FlowStep(Sourced):
    id: str
    name: str
    description: str


class ScheduleFact(Sourced):
    id: str
    fact: str


class ChecklistItem(Sourced):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    phase: Literal["preparation", "filing", "review", "requirement"]
    label: str
    question: str
    why: str
    page_point: int | None = Field(default=None, ge=1)  # its number (①②…) among the commission page's points


class Procedure(Strict):
    flow: list[FlowStep] = Field(min_length=1)
    schedule: list[ScheduleFact] = Field(min_length=1)
    checklist: list[ChecklistItem] = Field(min_length=1)


class GuidanceSection(Strict):
    heading: str
    text: str


class GuidancePage(Sourced):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    sections: list[GuidanceSection] = Field(min_length=1)


class QAPair(Sourced):
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
