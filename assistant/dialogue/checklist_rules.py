"""Which checklist items the earlier answers already decide, and which they make moot.

Both are data in corpus/procedure.yaml: `applies_to` names the notification types (or `statutory`) an item
or schedule fact belongs to, `derive` names the rule and the conversation steps that settle an item. The
rules themselves are here; each reads the checklist state only (`Facts`), so the same answers always give
the same outcome, for the question flow, the progress count and the 事前相談シート alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.advise.matching import fold
from assistant.dialogue.export import STATUS_CHECK, STATUS_DONE, STATUS_TODO
from assistant.knowledge.chunks import NOTIFICATION_NAMES
from assistant.knowledge.models import NOTIFICATION_CODES, Case, ChecklistItem

UNANSWERED = "未回答"
SKIPPED = "（スキップ）"
STATUTORY = "statutory"
# How the sheet names the case fields an answer is compared with.
CASE_FIELD_LABELS = {"target_persons": "対象者", "purpose_terms": "目的の語", "benefit": "給付の内容"}


@dataclass(frozen=True)
class Outcome:
    """An item's status and the answer shown for it."""

    status: str
    answer: str


@dataclass(frozen=True)
class Facts:
    """What the checklist conversation has settled so far, read from its stored state."""

    answers: dict[str, dict[str, Any]]
    case: dict[str, Any]
    notification: dict[str, Any]
    schedule: dict[str, Any]

    @classmethod
    def of(cls, state: dict[str, Any]) -> "Facts":
        return cls(state["answers"], state.get("case") or {}, state["notification"], state.get("schedule") or {})

    @property
    def kind(self) -> str | None:
        """`statutory` when the user said the affair is a statutory one, else the notification type (None: open)."""
        if self.case.get("statutory_answer") == "yes":
            return STATUTORY
        return self.notification.get("type")

    def answer(self, step_id: str) -> str | None:
        entry = self.answers.get(step_id)
        return entry["answer"] if entry else None

    def status(self, step_id: str) -> str:
        return self.answers.get(step_id, {}).get("status", UNANSWERED)

    @property
    def confirmed_case(self) -> int | None:
        return self.case.get("confirmed")


def applies(applies_to: Sequence[str], kind: str | None) -> bool:
    """Whether an item for `applies_to` is needed; while the type is open, every notification type counts."""
    if kind is None:
        return any(code in applies_to for code in NOTIFICATION_CODES)
    return kind in applies_to


class Rules:
    """The `derive` rules of corpus/procedure.yaml over one state."""

    def __init__(
        self,
        items: dict[str, ChecklistItem],
        cases: dict[int, Case],
        labels: dict[str, str],
        top_case: Callable[[str], int | None],
    ) -> None:
        self.items = items
        self.cases = cases
        self.labels = labels  # step id → label
        self.top_case = top_case  # the best case type for a text (memoised by the caller)

    def outcome(self, item: ChecklistItem, facts: Facts) -> Outcome | None:
        """The item's outcome from other answers, or None when the item has to be asked."""
        if item.derive is None:
            return None
        return getattr(self, "_" + item.derive.rule.replace("-", "_"))(item, facts)

    def status(self, item_id: str, facts: Facts) -> str:
        """An item's status, whether it was asked or derived."""
        derived = self.outcome(self.items[item_id], facts)
        return derived.status if derived is not None else facts.status(item_id)

    # -- one method per rule ----------------------------------------------------------------------------
    def _case(self, item: ChecklistItem, facts: Facts) -> Outcome:
        if facts.confirmed_case is not None:
            return Outcome(STATUS_DONE, f"事例({facts.confirmed_case})")
        if "case" not in facts.answers:
            return Outcome(UNANSWERED, "")
        return Outcome(STATUS_CHECK, "事例は確定していません")

    def _statutory_check(self, item: ChecklistItem, facts: Facts) -> Outcome | None:
        said = facts.case.get("statutory_answer")
        names = "、".join(facts.case.get("statutory_affairs") or []) or "法定事務"
        if said == "yes":
            return Outcome(STATUS_CHECK, f"法定事務（{names}）に当たると回答")
        if said == "no":
            return Outcome(STATUS_DONE, f"法定事務（{names}）ではなく独自利用事務と回答")
        if said == "unsure":
            return Outcome(STATUS_CHECK, f"法定事務（{names}）に当たるかは未確定")
        if facts.confirmed_case is not None and not facts.case.get("statutory"):
            return Outcome(STATUS_DONE, f"事例({facts.confirmed_case})に当たると確認（事務の概要から法定事務には当たらないと判定）")
        return None  # nothing settles it: the item is asked

    def _notification(self, item: ChecklistItem, facts: Facts) -> Outcome:
        code = facts.notification.get("type")
        if code:
            return Outcome(STATUS_DONE, NOTIFICATION_NAMES[code])
        if "notification" not in facts.answers:
            return Outcome(UNANSWERED, "")
        return Outcome(STATUS_CHECK, "届出の種類は決まっていません")

    def _schedule(self, item: ChecklistItem, facts: Facts) -> Outcome:
        if "schedule" not in facts.answers:
            return Outcome(UNANSWERED, "")
        start = facts.schedule.get("start")
        if not start:
            return Outcome(STATUS_CHECK, "連携開始の時期が未定")
        return Outcome(STATUS_CHECK, f"連携開始の希望時期は{start}（受付期間の月は未確認）")

    def _read_step(self, item: ChecklistItem, facts: Facts) -> tuple[str, str | None, Outcome | None]:
        """The step the rule reads, its answer, and the outcome when that answer settles nothing."""
        assert item.derive is not None
        step = item.derive.steps[0]
        answer = facts.answer(step)
        if answer is None:
            return step, None, Outcome(UNANSWERED, "")
        if answer == SKIPPED:
            return step, answer, Outcome(STATUS_CHECK, f"「{self.labels.get(step, step)}」の回答がありません")
        return step, answer, None

    def _compared_case(self, item: ChecklistItem, facts: Facts, answer: str) -> tuple[Case | None, str]:
        assert item.derive is not None
        case = self.cases.get(facts.confirmed_case) if facts.confirmed_case is not None else None
        if case is None or item.derive.case_field is None:
            return case, ""
        value = getattr(case, item.derive.case_field)
        shown = "、".join(value) if isinstance(value, list) else str(value or "")
        return case, f"事例({case.id})の{CASE_FIELD_LABELS.get(item.derive.case_field, item.derive.case_field)}: {shown}"

    def _same_case(self, item: ChecklistItem, facts: Facts) -> Outcome:
        step, answer, settled = self._read_step(item, facts)
        if settled is not None or answer is None:
            return settled or Outcome(UNANSWERED, "")
        case, reference = self._compared_case(item, facts, answer)
        if case is None:
            return Outcome(STATUS_CHECK, f"{answer}（事例が確定していないため照合できません）")
        fits = facts.status(step) == STATUS_DONE and self.top_case(answer) == case.id
        verdict = f"事例({case.id})に合うと判定" if fits else "事例との照合は要確認"
        return Outcome(STATUS_DONE if fits else STATUS_CHECK, f"{answer}（{verdict}。{reference}）")

    def _case_terms(self, item: ChecklistItem, facts: Facts) -> Outcome:
        step, answer, settled = self._read_step(item, facts)
        if settled is not None or answer is None:
            return settled or Outcome(UNANSWERED, "")
        case, reference = self._compared_case(item, facts, answer)
        if case is None or item.derive is None or item.derive.case_field is None:
            return Outcome(STATUS_CHECK, f"{answer}（事例が確定していないため照合できません）")
        terms = getattr(case, item.derive.case_field) or []
        found = [term for term in terms if fold(term) in fold(answer)]
        if found:
            return Outcome(STATUS_DONE, f"{answer}（事例の語「{'」「'.join(found)}」を含む。{reference}）")
        return Outcome(STATUS_CHECK, f"{answer}（事例の語が見当たりません。{reference}）")

    def _answer(self, item: ChecklistItem, facts: Facts) -> Outcome:
        step, answer, settled = self._read_step(item, facts)
        if settled is not None or answer is None:
            return settled or Outcome(UNANSWERED, "")
        status = STATUS_DONE if facts.status(step) == STATUS_DONE else STATUS_CHECK
        return Outcome(status, f"{answer}（事務の概要の「{self.labels.get(step, step)}」の回答）")

    def _all_of(self, item: ChecklistItem, facts: Facts) -> Outcome:
        assert item.derive is not None
        statuses = [self.status(other, facts) for other in item.derive.steps]
        basis = "・".join(f"「{self.items[other].label}」" for other in item.derive.steps)
        if UNANSWERED in statuses:
            return Outcome(UNANSWERED, "")
        if all(status == STATUS_DONE for status in statuses):
            return Outcome(STATUS_DONE, f"{basis}の回答から")
        if STATUS_TODO in statuses:
            return Outcome(STATUS_TODO, f"{basis}の回答から")
        return Outcome(STATUS_CHECK, f"{basis}の回答から")
