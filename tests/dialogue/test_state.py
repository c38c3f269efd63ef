"""The conversation state without the model: readings built by hand, updates checked slot by slot."""

from assistant.advise.notify import AffairFacts
from assistant.dialogue.state import ConversationState, Pending, advance, after_answer
from assistant.understand.reading import AffairMention, NotificationFacts, Reading

CHILD = AffairMention(text="子ども医療費助成", cases=(1,))
HOUSING = AffairMention(text="市営住宅の管理", cases=(7,))


def reading(*intents: str, affairs=(), existing=None, changes=(), polarity=None, reference=None, text="…") -> Reading:  # noqa: ANN001
    facts = NotificationFacts(existing=existing, changes=frozenset(changes))
    return Reading(text=text, intents=intents, facts=facts, polarity=polarity, affairs=tuple(affairs), reference=reference)


def no_reclassify(text: str) -> AffairMention:
    return AffairMention(text=text)


def test_a_follow_up_keeps_the_affair_and_answers_its_own_intent() -> None:
    state = ConversationState()
    advance(state, reading("case_fit", affairs=[CHILD]), no_reclassify)
    focus = advance(state, reading("timing"), no_reclassify)
    assert focus.intents == ("timing",)
    assert state.affair is not None and state.affair.cases == [1]


def test_a_short_reply_fills_the_slot_that_was_asked() -> None:
    state = ConversationState()
    advance(state, reading("notification_type", affairs=[CHILD]), no_reclassify)
    after_answer(state, ("notification_type",), "existing", "既に届出をしていますか。", None)
    focus = advance(state, reading("answer", polarity="no"), no_reclassify)
    assert focus.filled_slot == "existing" and focus.intents[0] == "notification_type"
    assert state.affair.facts.existing == "no"


def test_a_correction_overrides_an_earlier_fact() -> None:
    state = ConversationState()
    advance(state, reading("notification_type", affairs=[CHILD], existing="yes", changes=["info_added"]), no_reclassify)
    after_answer(state, ("notification_type",), None, None, "change")
    focus = advance(state, reading("correction", existing="no"), no_reclassify)
    assert state.affair.facts.existing == "no" and state.affair.notification_type is None
    assert focus.intents == ("notification_type",)  # the corrected question is answered again


def test_two_affairs_keep_two_states_and_references_pick_one() -> None:
    state = ConversationState()
    advance(state, reading("case_fit", affairs=[CHILD, HOUSING]), no_reclassify)
    assert [a.cases for a in state.affairs] == [[1], [7]] and state.focus == 1
    advance(state, reading("notification_type", reference=-1, existing="no"), no_reclassify)
    assert state.focus == 1 and state.affairs[1].facts.existing == "no" and state.affairs[0].facts.existing is None
    advance(state, reading("timing", reference=0), no_reclassify)
    assert state.focus == 0


def test_a_reply_to_the_target_group_question_reads_the_affair_again() -> None:
    umbrella = AffairMention(text="福祉医療費助成", cases=(1, 10, 14), ambiguous=True, clarifying_question="対象者は？")
    state = ConversationState()
    advance(state, reading("case_fit", affairs=[umbrella]), no_reclassify)
    state.pending = Pending("target", "対象者は？", "case_fit", 0)

    def reclassify(text: str) -> AffairMention:
        assert "福祉医療費助成" in text and "ひとり親" in text
        return AffairMention(text=text, cases=(10,))

    focus = advance(state, reading("answer", text="ひとり親家庭です"), reclassify)
    assert focus.filled_slot == "target" and state.affair.cases == [10] and not state.affair.ambiguous


def test_an_unsure_reply_is_not_asked_again() -> None:
    state = ConversationState()
    advance(state, reading("notification_type", affairs=[CHILD]), no_reclassify)
    after_answer(state, ("notification_type",), "existing", "既に届出をしていますか。", None)
    focus = advance(state, reading("answer", polarity="unsure"), no_reclassify)
    assert focus.unsure and state.affair.facts.existing is None


def test_state_survives_serialisation() -> None:
    state = ConversationState()
    advance(state, reading("notification_type", affairs=[CHILD, HOUSING], existing="yes", changes=["rename"]), no_reclassify)
    after_answer(state, ("notification_type",), None, None, "replace")
    again = ConversationState.from_dict(state.to_dict())
    assert again.to_dict() == state.to_dict()
    assert again.affair.facts == AffairFacts(existing="yes", changes=frozenset({"rename"}))
    assert ConversationState.from_dict({"affair": "old format"}).affairs == []
