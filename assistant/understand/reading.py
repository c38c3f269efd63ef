"""The typed reading of one message, computed once and passed on (never re-parsed from text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Existing = Literal["yes", "no"]
Polarity = Literal["yes", "no", "unsure"]
Asker = Literal["staff", "helpdesk"]

# Intents that carry no question of their own: they act on the conversation.
CONVERSATIONAL_INTENTS = frozenset({"answer", "correction", "greeting"})


@dataclass(frozen=True)
class NotificationFacts:
    """What a message says about the affair's notification: deciding facts for the notification type."""

    existing: Existing | None = None
    changes: frozenset[str] = frozenset()
    unpromulgated: bool = False

    @property
    def empty(self) -> bool:
        return self.existing is None and not self.changes and not self.unpromulgated

    def to_dict(self) -> dict[str, Any]:
        return {"existing": self.existing, "changes": sorted(self.changes), "unpromulgated": self.unpromulgated}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NotificationFacts":
        return cls(data.get("existing"), frozenset(data.get("changes", ())), bool(data.get("unpromulgated")))


@dataclass(frozen=True)
class AffairMention:
    """An affair the message names, with the case types that may fit it."""

    text: str  # the part of the message that names it
    cases: tuple[int, ...] = ()  # strong candidates, best first
    statutory: bool = False
    statutory_names: tuple[str, ...] = ()
    no_fit: bool = False
    ambiguous: bool = False  # an umbrella name: the target group decides the case
    clarifying_question: str | None = None
    facts: NotificationFacts | None = None  # what this part of the message says of this affair (several affairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "cases": list(self.cases),
            "statutory": self.statutory,
            "statutory_names": list(self.statutory_names),
            "no_fit": self.no_fit,
            "ambiguous": self.ambiguous,
            "clarifying_question": self.clarifying_question,
            "facts": self.facts.to_dict() if self.facts else None,
        }


@dataclass(frozen=True)
class Reading:
    text: str
    intents: tuple[str, ...]  # best first
    scores: dict[str, float] = field(default_factory=dict)
    facts: NotificationFacts = NotificationFacts()
    polarity: Polarity | None = None
    asker: Asker = "staff"
    affairs: tuple[AffairMention, ...] = ()
    reference: int | None = None  # 0 = the first affair of the conversation (前者), -1 = the last (後者)
    source: str = "model"  # "model" (the learned reader) or the LLM backend that filled it

    @property
    def primary(self) -> str:
        return self.intents[0]

    @property
    def questions(self) -> tuple[str, ...]:
        """The intents that ask something (not answers, corrections or greetings)."""
        return tuple(i for i in self.intents if i not in CONVERSATIONAL_INTENTS)

    def has(self, intent: str) -> bool:
        return intent in self.intents

    def to_dict(self) -> dict[str, Any]:
        return {
            "intents": list(self.intents),
            "scores": {k: round(v, 3) for k, v in self.scores.items()},
            "facts": self.facts.to_dict(),
            "polarity": self.polarity,
            "asker": self.asker,
            "affairs": [a.to_dict() for a in self.affairs],
            "reference": self.reference,
            "source": self.source,
        }
