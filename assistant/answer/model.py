"""The answer as data: sections of statements, each with its citations; renderers turn it into text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.citations import Citation


@dataclass(frozen=True)
class Statement:
    text: str
    refs: tuple[int, ...] = ()  # indexes into Answer.citations
    uncertain: bool = False  # the fact it states is not confirmed by a source (要確認)
    consult: bool = False  # advice to consult the commission's secretariat (a letter from the office words it itself)


@dataclass(frozen=True)
class Excerpt:
    """A retrieved passage shown apart from the answer, as related material."""

    citation: int
    text: str
    uncertain: bool = False


@dataclass
class Answer:
    conclusion: list[Statement] = field(default_factory=list)
    reasons: list[Statement] = field(default_factory=list)
    confirm: list[Statement] = field(default_factory=list)
    clarifying_question: str | None = None
    clarifying_slot: str | None = None  # which slot the question asks for (typed, never recovered from its wording)
    related: list[Excerpt] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    # What the answer decided, for the machine interface.
    notification_type: str | None = None
    cases: list[int] = field(default_factory=list)
    statutory: bool = False
    out_of_scope: bool = False
    intents: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    question: str = ""
    reply_draft_requested: bool = False
    draft: str | None = None  # a reply draft, when the message asked for one

    @property
    def needs_clarification(self) -> bool:
        return self.clarifying_question is not None

    def cite(self, citation: Citation) -> int:
        """The index of the citation, adding it once (the same quote of the same chunk is one citation)."""
        for index, existing in enumerate(self.citations):
            if existing.source_id == citation.source_id and existing.quote == citation.quote:
                return index
        self.citations.append(citation)
        return len(self.citations) - 1

    def statements(self) -> list[Statement]:
        return [*self.conclusion, *self.reasons, *self.confirm]

    def used_citations(self) -> list[int]:
        """Citation indexes in the order the reader meets them (statements, then related excerpts)."""
        order: list[int] = []
        for statement in self.statements():
            for ref in statement.refs:
                if ref not in order:
                    order.append(ref)
        for excerpt in self.related:
            if excerpt.citation not in order:
                order.append(excerpt.citation)
        return order

    @property
    def uncertain(self) -> bool:
        return any(s.uncertain for s in self.statements())

    def summary(self) -> dict[str, Any]:
        return {
            "notification_type": self.notification_type,
            "cases": self.cases,
            "statutory": self.statutory,
            "out_of_scope": self.out_of_scope,
            "needs_clarification": self.needs_clarification,
            "clarifying_question": self.clarifying_question,
        }
