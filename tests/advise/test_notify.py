"""The notification advisor: corpus rules over an affair's facts decide the type or ask the deciding question."""

import pytest

from assistant.advise.notify import AffairFacts, NotificationAdvisor
from assistant.understand.reading import NotificationFacts


@pytest.fixture(scope="module")
def advisor(assistant) -> NotificationAdvisor:  # noqa: ANN001
    return NotificationAdvisor(assistant.knowledge.notification_rules)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (AffairFacts(existing="no"), "new"),
        (AffairFacts(existing="no", changes=frozenset({"info_added"})), "new"),
        (AffairFacts(existing="yes", changes=frozenset({"info_added"})), "change"),
        (AffairFacts(existing="yes", changes=frozenset({"info_removed"})), "change"),
        (AffairFacts(existing="yes", changes=frozenset({"case_added"})), "change"),
        (AffairFacts(existing="yes", changes=frozenset({"case_removed"})), "change"),  # the affair continues
        (AffairFacts(existing="yes", changes=frozenset({"abolished"})), "discontinue"),
        (AffairFacts(existing="yes", changes=frozenset({"linkage_stopped"})), "discontinue"),
        (AffairFacts(existing="yes", changes=frozenset({"renumber_typo"})), "replace"),
        (AffairFacts(changes=frozenset({"rename"})), "replace"),
        (AffairFacts(changes=frozenset({"target_change"}), content_change="yes"), "change"),
        (AffairFacts(changes=frozenset({"norm_form_change"}), content_change="no"), "replace"),
        (AffairFacts(changes=frozenset({"target_change", "renumber_typo"})), "replace"),
    ],
)
def test_facts_decide_the_type(advisor: NotificationAdvisor, facts: AffairFacts, expected: str) -> None:
    decision = advisor.decide(facts)
    assert decision.notification_type == expected
    assert not decision.needs_clarification and decision.rule.reason


@pytest.mark.parametrize(
    ("facts", "slot"),
    [
        (AffairFacts(), "existing"),
        (AffairFacts(changes=frozenset({"info_added"})), "existing"),  # added to a notified affair, or a new one?
        (AffairFacts(existing="yes"), "changes"),
        (AffairFacts(changes=frozenset({"target_change"})), "content_change"),
        (AffairFacts(changes=frozenset({"norm_form_change"})), "content_change"),
        (AffairFacts(existing="yes", changes=frozenset({"body_change"})), "transfer"),
    ],
)
def test_missing_facts_get_the_one_deciding_question(advisor: NotificationAdvisor, facts: AffairFacts, slot: str) -> None:
    decision = advisor.decide(facts)
    assert decision.notification_type is None and decision.needs_clarification
    assert decision.question_slot == slot
    assert decision.question == advisor.rules.questions[slot]


def test_unclear_cases_recommend_consulting_the_commission(advisor: NotificationAdvisor) -> None:
    transfer = advisor.decide(AffairFacts(existing="yes", changes=frozenset({"body_change"})))
    assert transfer.consult and transfer.confidence == "要確認"
    unclear = advisor.decide(AffairFacts(changes=frozenset({"target_change"}), content_change="no"))
    assert unclear.notification_type is None and not unclear.needs_clarification and unclear.consult


def test_a_correction_replaces_changes_and_later_statements_win() -> None:
    facts = AffairFacts(existing="yes", changes=frozenset({"info_added"}))
    corrected = facts.with_reading(NotificationFacts(existing="no"), correction=True)
    assert corrected.existing == "no" and corrected.changes == frozenset({"info_added"})
    replaced = facts.with_reading(NotificationFacts(changes=frozenset({"rename"})), correction=True)
    assert replaced.changes == frozenset({"rename"})
    added = facts.with_reading(NotificationFacts(changes=frozenset({"rename"})))
    assert added.changes == frozenset({"info_added", "rename"})
    assert AffairFacts.from_dict(added.to_dict()) == added


def test_every_rule_can_apply(advisor: NotificationAdvisor) -> None:
    """No rule is shadowed by an earlier one: each decides for the facts it names."""
    for rule in advisor.rules.rules:
        facts = AffairFacts(
            existing=rule.existing,
            changes=frozenset([*rule.any[:1], *rule.all]),
            content_change=None if rule.content_change in (None, "unknown") else rule.content_change,
        )
        assert advisor.decide(facts).rule.id == rule.id, rule.id
