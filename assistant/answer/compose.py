"""The answering step of one turn: update the conversation state with the reading, plan the answer, and
report it in the machine interface's shape (the `ask` / `chat` result)."""

from __future__ import annotations

from typing import Any

from assistant.advise.classify import CaseClassifier
from assistant.advise.notify import NotificationAdvisor
from assistant.answer.model import Answer
from assistant.answer.plans import PlanContext, Planner
from assistant.answer.render import citations_for_output, to_markdown
from assistant.config import Settings
from assistant.dialogue.state import ConversationState, TurnFocus, advance, after_answer
from assistant.knowledge import Knowledge
from assistant.retrieve.hybrid import HybridRetriever
from assistant.understand.reader import Reader
from assistant.understand.reading import Reading


class Answerer:
    def __init__(self, knowledge: Knowledge, retriever: HybridRetriever, classifier: CaseClassifier, reader: Reader,
                 settings: Settings) -> None:
        self.knowledge = knowledge
        self.reader = reader
        self.planner = Planner(knowledge, retriever, classifier, NotificationAdvisor(knowledge.notification_rules),
                               reader.vocabulary, reader.model, top_k=settings.top_k)

    def respond(self, reading: Reading, state: ConversationState) -> tuple[Answer, TurnFocus]:
        """Answer one reading in the given conversation state, which is updated in place."""
        focus = advance(state, reading, self.reader.mention)
        answer = self.planner.plan(PlanContext(reading, state, focus))
        after_answer(state, focus.intents, answer.clarifying_slot, answer.clarifying_question, answer.notification_type,
                     reading.text)
        return answer, focus


def result_dict(answer: Answer, reading: Reading, masked: list[str]) -> dict[str, Any]:
    """The `ask` result of CONTRACT.md, plus optional keys (intents, reading, masked, uncertain)."""
    citations = citations_for_output(answer)
    return {
        "answer": to_markdown(answer),
        "notification_type": answer.notification_type,
        "cases": list(answer.cases),
        "statutory": answer.statutory,
        "out_of_scope": answer.out_of_scope,
        "needs_clarification": answer.needs_clarification,
        "clarifying_question": answer.clarifying_question,
        "citations": citations,
        "masked": masked,
        "uncertain": sorted({c["source_id"] for c in citations if c["confidence"] == "要確認"}),
        "question": reading.text,
        "intents": list(answer.intents),
        "reading": reading.to_dict(),
    }
