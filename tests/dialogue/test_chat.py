"""Whole consultations through the Python API: follow-ups, corrections, short replies, two affairs, drafts."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pytest

from assistant.answer_checks import hygiene
from assistant.dialogue.chat import STATUS_ANSWERING, STATUS_READING, ChatService
from assistant.dialogue.consultations import account_holder, browser_holder
from assistant.retrieve.hybrid import Audience
from assistant.service import InputError
from tests.dialogue.consultation import CONSULTATION_TURNS

ASK_KEYS = {"answer", "notification_type", "cases", "statutory", "out_of_scope", "needs_clarification", "clarifying_question", "citations"}


@pytest.fixture
def chat(db_assistant) -> ChatService:  # noqa: ANN001
    return ChatService(db_assistant)


def _first(result: dict) -> str:
    return result["answer"].split("\n", 1)[0]


def test_turn_has_the_contract_keys(chat: ChatService) -> None:
    result = chat.turn("s1", "子ども医療費助成について、何の届出が必要ですか？")
    assert ASK_KEYS <= set(result)
    assert result["session"] == "s1" and result["turn"] == 1
    assert result["cases"] == [1]
    assert result["needs_clarification"] and result["clarifying_question"]
    assert result["suggestions"] == ["はい、届出済みです", "いいえ、まだ届出していません", "わかりません"]
    for citation in result["citations"]:
        assert {"source_id", "title", "locator", "quote", "as_of", "confidence"} <= set(citation)


def test_follow_ups_are_answered_for_the_intent_they_ask(chat: ChatService) -> None:
    first = chat.turn("s2", "市営住宅の管理事務で連携を始めたい。どの事例に当たりますか")
    assert first["cases"] == [7] and "事例(7)" in _first(first)
    when = chat.turn("s2", "それはいつ出せますか")
    assert "受付期間" in _first(when) and when["cases"] == [7]
    assert _first(when) != _first(first)
    prepare = chat.turn("s2", "その前に準備しておくことは")
    assert _first(prepare).startswith("届出の事前準備では")
    scope = chat.turn("s2", "照会できる情報の範囲は")
    assert "同一又はその一部" in _first(scope)
    assert len({_first(r) for r in (first, when, prepare, scope)}) == 4


def test_a_short_reply_answers_the_assistants_question(chat: ChatService) -> None:
    chat.turn("s3", "ひとり親家庭等医療費助成について、何の届出になりますか")
    asked = chat.turn("s3", "はい")  # already notified
    assert asked["needs_clarification"] and asked["context"]["affairs"][0]["facts"]["existing"] == "yes"
    decided = chat.turn("s3", "照会する情報に住民票関係情報を追加します")
    assert decided["notification_type"] == "change" and decided["cases"] == [10]


def test_a_correction_overrides_the_earlier_fact(chat: ChatService) -> None:
    first = chat.turn("s4", "就学援助で届出済みです。照会する情報を追加したいのですが、何の届出ですか")
    assert first["notification_type"] == "change"
    corrected = chat.turn("s4", "すみません、連携はまだでした")
    assert corrected["notification_type"] == "new"
    assert "新規" in _first(corrected)


def test_a_reply_about_the_target_group_is_not_out_of_scope(chat: ChatService) -> None:
    asked = chat.turn("s5", "福祉医療費助成で情報連携したいのですが、どの事例ですか")
    assert asked["needs_clarification"]
    answered = chat.turn("s5", "対象はひとり親家庭の方です")
    assert not answered["out_of_scope"] and answered["cases"] == [10]


def test_two_affairs_keep_their_own_facts(chat: ChatService) -> None:
    chat.turn("s6", "子ども医療費助成は届出済みで、市営住宅の管理はまだ連携していません。")
    latter = chat.turn("s6", "後者は何の届出ですか")
    assert latter["notification_type"] == "new" and latter["cases"] == [7]
    former = chat.turn("s6", "前者で照会する情報を追加する場合は、何の届出ですか？")
    assert former["notification_type"] == "change" and former["cases"] == [1]


def test_a_reply_draft_is_made_inside_the_consultation(chat: ChatService) -> None:
    chat.turn("s7", "D町から、子ども医療費助成の届出済みの事務で号ずれがあったが何の届出かと問い合わせがありました")
    result = chat.turn("s7", "D町への回答文案を作ってください")
    assert not result["out_of_scope"]
    assert "件名: Re:" in result["answer"] and "差替え" in result["answer"]


def test_a_session_continues_with_new_service_objects(db_assistant) -> None:  # noqa: ANN001
    ChatService(db_assistant).turn("s8", "ひとり親家庭等医療費助成について、既に届出済みです。何の届出が必要ですか？")
    again = ChatService(copy.copy(db_assistant))  # as in a new process: same database file
    result = again.turn("s8", "照会する情報に住民票関係情報を追加します")
    assert result["turn"] == 2 and result["notification_type"] == "change"
    assert [h["role"] for h in again.history("s8")] == ["user", "assistant", "user", "assistant"]


def test_unanswerable_clarification_is_not_asked_forever(chat: ChatService) -> None:
    chat.turn("s9", "子ども医療費助成について、何の届出が必要ですか？")
    result = chat.turn("s9", "わかりません")
    assert result["context"]["pending_question"] is None and not result["needs_clarification"]
    assert "事務局" in result["answer"]


def test_stream_says_what_it_does_then_gives_the_final_result(chat: ChatService) -> None:
    events = list(chat.stream("s10", "子ども医療費助成の準ずる法定事務は何ですか？"))
    final = events[-1]["final"]
    assert [e["status"] for e in events[:-1]] == [STATUS_READING, STATUS_ANSWERING]
    assert not any("delta" in e for e in events), "without an LLM nothing is cut up to look streamed"
    assert final["turn"] == 1 and final["session"] == "s10" and final["answer"]


def test_answers_carry_citations_and_uncertainty_marks(chat: ChatService, db_assistant) -> None:  # noqa: ANN001
    result = chat.turn("s11", "小児慢性の日常生活用具給付の準ずる法定事務は？")
    by_id = db_assistant.index.by_id
    assert result["citations"]
    for citation in result["citations"]:
        assert citation["quote"] in by_id[citation["source_id"]].text
    body = result["answer"].split("**出典**")[0]
    uncertain_numbers = {c["number"] for c in result["citations"] if c["confidence"] == "要確認"}
    for line in body.split("\n"):
        if any(f"[{n}]" in line for n in uncertain_numbers) and not any(
                f"[{c['number']}]" in line for c in result["citations"] if c["confidence"] == "確認済み"):
            assert "【要確認】" in line, line


def test_personal_data_is_masked_before_it_is_stored(chat: ChatService, tmp_path: Path) -> None:
    result = chat.turn("s12", "担当 03-1234-5678、個人番号 1234 5678 9018 の方の子ども医療費助成で何の届出が必要？")
    assert set(result["masked"]) >= {"phone", "my_number"}
    user_text = chat.history("s12")[0]["text"]
    assert "03-1234-5678" not in user_text and "[電話番号マスク済]" in user_text
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("dialogue.db*"))
    assert raw and "03-1234-5678".encode() not in raw and "9018".encode() not in raw


def test_out_of_scope_message_does_not_inherit_context(chat: ChatService) -> None:
    chat.turn("s13", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    result = chat.turn("s13", "マイナンバーカードの更新手続きは？")
    assert result["out_of_scope"] and result["cases"] == [] and result["notification_type"] is None
    back = chat.turn("s13", "それで、届出はいつ出せますか")
    assert not back["out_of_scope"] and back["cases"] == [1]


def test_feedback_is_stored_and_validated(chat: ChatService) -> None:
    chat.turn("s14", "子ども医療費助成の事例は？")
    chat.feedback("s14", 1, 1, "わかりやすい。連絡先 03-1234-5678")
    stored = chat.store.feedback("s14")
    assert [(f.turn, f.rating) for f in stored] == [(1, 1)]
    assert "03-1234-5678" not in stored[0].comment
    with pytest.raises(InputError):
        chat.feedback("s14", 1, 5)
    with pytest.raises(InputError):
        chat.feedback("s14", 9, 1)


def test_bad_input_is_rejected(chat: ChatService) -> None:
    with pytest.raises(InputError):
        chat.turn("s15", "   ")
    with pytest.raises(InputError):
        chat.turn("", "子ども医療費助成の事例は？")


def test_state_is_stored_in_the_database(chat: ChatService, tmp_path: Path) -> None:
    chat.turn("s16", "市営住宅の管理事務で届出済みです")
    rows = sqlite3.connect(tmp_path / "dialogue.db").execute(
        "select state from dialogue_sessions where session_id = 's16'").fetchall()
    assert rows and '"cases": [7]' in rows[0][0]


SCRIPT = [
    *CONSULTATION_TURNS,
    ("マイナンバーカードを紛失しました", lambda r: r["out_of_scope"]),
]


def test_scripted_ten_turn_consultation(chat: ChatService) -> None:
    for number, (message, check) in enumerate(SCRIPT, start=1):
        result = chat.turn("script", message)
        assert result["turn"] == number
        assert check(result), (message, result["answer"][:300])
        seen = hygiene(result)
        assert not seen["internal_names"] and not seen["staff_notes"] and not seen["duplicate_sources"], (message, seen)
    assert len(chat.history("script")) == 2 * len(SCRIPT)


def test_a_turn_overtaken_by_another_process_is_worked_out_again(db_assistant, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    chat = ChatService(db_assistant)
    first = chat.turn("elsewhere", "子ども医療費助成について、何の届出が必要ですか？")
    established = chat.store.load_session("chat", "elsewhere").state
    real_load = chat.store.load_session
    reads = []

    def load_then_overtaken(kind: str, session_id: str):  # noqa: ANN202
        record = real_load(kind, session_id)
        if not reads:  # another process stores its first turn while this one works on its read
            chat.store.add_exchange("chat", "race", "子ども医療費助成について、何の届出が必要ですか？", first["answer"], first, established)
        reads.append(record)
        return record

    monkeypatch.setattr(chat.store, "load_session", load_then_overtaken)
    result = chat.turn("race", "まだです")
    assert len(reads) == 2 and result["turn"] == 2
    assert result["context"]["cases"] == [1] and result["notification_type"] == "new"
    stored = chat.store.load_session("chat", "race").state
    assert stored["affairs"][0]["cases"] == [1] and stored["affairs"][0]["facts"]["existing"] == "no"


def test_feedback_with_control_codes_and_undecodable_text_is_stored_clean(chat: ChatService) -> None:
    chat.turn("s12", "子ども医療費助成の事例は？")
    chat.feedback("s12", 1, -1, "出典が\x00古い\udc80です")
    assert [f.comment for f in chat.store.feedback("s12")] == ["出典が古いです"]


def test_consultations_are_listed_per_holder_titled_by_the_first_question(chat: ChatService) -> None:
    mine, other = account_holder("tanaka"), browser_holder("b" * 24)
    chat.turn("c-1", "子ども医療費助成で住民税の情報を照会したいです。担当の山田です。", holder=mine)
    chat.turn("c-1", "届出はいつまでに出しますか", holder=mine)
    chat.turn("c-2", "ひとり親家庭の医療費助成はどの事例ですか", holder=mine)
    chat.turn("c-3", "市営住宅の管理事務はどの事例ですか", holder=other)
    chat.turn("c-4", "保育料の減免はどの事例ですか")  # no holder: listed nowhere
    listed = chat.consultations_of(mine)
    assert [c.session_id for c in listed] == ["c-2", "c-1"]
    first = listed[1]
    assert first.title.startswith("子ども医療費助成で住民税の情報を照会") and len(first.title) <= 40
    assert "山田" not in first.title  # titles are as masked as the stored question
    assert [c.session_id for c in chat.consultations_of(other)] == ["c-3"]
    chat.turn("c-1", "準備しておくことは", holder=mine)
    assert [c.session_id for c in chat.consultations_of(mine)] == ["c-1", "c-2"]
    with pytest.raises(InputError):
        browser_holder("../../x")


def test_a_new_session_does_not_use_the_old_context(chat: ChatService) -> None:
    chat.turn("old-ctx", "市営住宅の管理事務で連携を始めたい。どの事例に当たりますか")
    follow = chat.turn("old-ctx", "それはいつ出せますか")
    assert follow["cases"] == [7]
    fresh = chat.turn("new-ctx", "それはいつ出せますか")
    assert fresh["context"]["affairs"] == [] and fresh["cases"] != [7]


def test_the_audience_reaches_the_search(chat: ChatService, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.retrieve import hybrid

    seen: list = []
    original = hybrid.HybridRetriever.search

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(hybrid.current_audience())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(hybrid.HybridRetriever, "search", spy)
    chat.turn("aud-1", "個人情報保護評価は必要ですか", audience=Audience("さくら市"))
    assert seen and set(seen) == {Audience("さくら市")}
    assert hybrid.current_audience() is None


def test_a_message_sent_again_after_its_answer_was_lost_is_not_stored_twice(chat: ChatService) -> None:
    first = chat.turn("resend", "子ども医療費助成で住民税の情報を照会したいです")
    lost = chat.turn("resend", "届出はいつまでに出せばよいですか？", seen_turns=1)  # answered, never received
    again = chat.turn("resend", "届出はいつまでに出せばよいですか？", seen_turns=1)
    assert again["replayed"] and again["turn"] == lost["turn"] == 2
    assert again["answer"] == lost["answer"] and again["citations"] == lost["citations"]
    assert chat.store.turn_count("chat", "resend") == 2
    # The same question asked again by someone who did receive the answer is a new turn.
    asked_twice = chat.turn("resend", "届出はいつまでに出せばよいですか？", seen_turns=2)
    assert asked_twice["turn"] == 3 and not asked_twice.get("replayed")
    # A different message after the last turn seen is a new turn too.
    other = chat.turn("resend", "条例の改正も必要ですか？", seen_turns=1)
    assert other["turn"] == 4 and not other.get("replayed") and first["turn"] == 1
