"""Notification-type advisor: 新規 / 変更 / 中止 / 差替え decided from an affair's facts by the rules in
corpus/notification-rules.yaml, or the one question whose answer decides it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from assistant.knowledge.models import NotificationRule, NotificationRules
from assistant.understand.reading import NotificationFacts

Tri = Literal["yes", "no"]


@dataclass(frozen=True)
class AffairFacts:
    """Everything known about one affair's notification, accumulated over a consultation."""

    existing: Tri | None = None
    changes: frozenset[str] = frozenset()
    content_change: Tri | None = None  # the answer to "do the 事例 or the requested information change?"
    unpromulgated: bool = False
    transfer_details: bool = False  # the user described the transfer after being asked

    def with_reading(self, facts: NotificationFacts, *, correction: bool = False) -> "AffairFacts":
        """Later statements win for `existing`; changes accumulate, and a correction replaces them."""
        changes = facts.changes if correction and facts.changes else self.changes | facts.changes
        return replace(
            self,
            existing=facts.existing or self.existing,
            changes=frozenset(changes),
            unpromulgated=facts.unpromulgated or self.unpromulgated,
        )

    @property
    def empty(self) -> bool:
        return self.existing is None and not self.changes and self.content_change is None and not self.unpromulgated

    def to_dict(self) -> dict[str, Any]:
        return {
            "existing": self.existing,
            "changes": sorted(self.changes),
            "content_change": self.content_change,
            "unpromulgated": self.unpromulgated,
            "transfer_details": self.transfer_details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AffairFacts":
        return cls(
            existing=data.get("existing"),
            changes=frozenset(data.get("changes", ())),
            content_change=data.get("content_change"),
            unpromulgated=bool(data.get("unpromulgated")),
            transfer_details=bool(data.get("transfer_details")),
        )


@dataclass(frozen=True)
class NotificationDecision:
    rule: NotificationRule
    notification_type: str | None
    question_slot: str | None = None
    question: str | None = None
    matched_changes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def needs_clarification(self) -> bool:
        return self.notification_type is None and self.question is not None

    @property
    def consult(self) -> bool:
        return self.rule.consult

    @property
    def confidence(self) -> str:
        return self.rule.confidence


def _holds(rule: NotificationRule, facts: AffairFacts) -> bool:
    if rule.existing is not None and facts.existing != rule.existing:
        return False
    if rule.any and not facts.changes.intersection(rule.any):
        return False
    if rule.all and not facts.changes.issuperset(rule.all):
        return False
    if rule.content_change is not None and (facts.content_change or "unknown") != rule.content_change:
        return False
    return True


class NotificationAdvisor:
    def __init__(self, rules: NotificationRules) -> None:
        self.rules = rules

    def decide(self, facts: AffairFacts) -> NotificationDecision:
        for rule in self.rules.rules:
            if not _holds(rule, facts):
                continue
            slot = rule.asks if rule.asks not in (None, "none") else None
            if slot == "transfer" and facts.transfer_details:
                slot = None
            question = self.rules.questions.get(slot) if slot else None  # type: ignore[arg-type]
            matched = tuple(sorted(facts.changes.intersection(rule.any)))
            return NotificationDecision(rule, rule.type, slot, question, matched)
        raise LookupError("notification-rules.yaml has no rule that always applies")
