"""Multi-turn chat through the Python API: follow-ups, clarifications, streaming, persistence."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from assistant.dialogue.chat import ChatService, canonical_answer, reply_polarity, split_pieces
from assistant.service import InputError
from tests.dialogue.consultation import CONSULTATION_TURNS

ASK_KEYS = {"answer", "notification_type", "cases", "statutory", "out_of_scope", "needs_clarification", "clarifying_question", "citations"}


@pytest.fixture
def chat(db_assistant) -> ChatService:  # noqa: ANN001
    return ChatService(db_assistant)


def test_turn_has_the_contract_keys(chat: ChatService) -> None:
    result = chat.turn("s1", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    assert ASK_KEYS <= set(result)
    assert result["session"] == "s1" and result["turn"] == 1
    assert isinstance(result["rewritten_question"], str) and isinstance(result["suggestions"], list)
    assert result["cases"] == [1]
    assert result["needs_clarification"] and result["clarifying_question"]
    assert result["suggestions"] == ["はい", "いいえ", "わかりません"]
    for citation in result["citations"]:
        assert set(citation) == {"source_id", "title", "locator", "quote", "as_of", "confidence"}


def test_clarification_answer_is_combined_with_earlier_facts(chat: ChatService) -> None:
    chat.turn("s2", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    result = chat.turn("s2", "まだです")
    assert result["turn"] == 2
    assert result["notification_type"] == "new"
    assert "子ども医療費助成" in result["rewritten_question"]
    assert result["context"]["facts"]["existing"] is False
    assert "新規" in result["answer"]


def test_follow_ups_are_resolved_against_earlier_turns(chat: ChatService) -> None:
    chat.turn("s3", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    chat.turn("s3", "まだです")
    changed = chat.turn("s3", "それは変更の届出ですか？")
    assert "子どもの医療費助成" in changed["rewritten_question"]
    assert changed["notification_type"] == "new"  # the remembered facts decide: not a change
    window = chat.turn("s3", "その場合の受付期間は？")
    assert "新規の届出の場合" in window["rewritten_question"]
    assert "受付期間" in window["answer"] and "年3回" in window["answer"]
    assert window["cases"] == [1]


def test_a_session_continues_with_new_service_objects(db_assistant) -> None:  # noqa: ANN001
    ChatService(db_assistant).turn("s4", "ひとり親家庭等医療費助成について、既に届出済みです。何の届出が必要ですか？")
    again = ChatService(copy.copy(db_assistant))  # as in a new process: same database file
    result = again.turn("s4", "照会する情報に住民票関係情報を追加します")
    assert result["turn"] == 2
    assert result["notification_type"] == "change"
    assert [h["role"] for h in again.history("s4")] == ["user", "assistant", "user", "assistant"]


def test_what_changes_choice(chat: ChatService) -> None:
    first = chat.turn("s5", "ひとり親家庭等医療費助成は既に届出済みです。今度どの届出が要りますか？")
    assert first["needs_clarification"]
    assert first["suggestions"][0] == "照会する情報を追加します"
    result = chat.turn("s5", "名称だけです")
    assert result["notification_type"] == "replace"


def test_unanswerable_clarification_is_not_asked_forever(chat: ChatService) -> None:
    chat.turn("s6", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    result = chat.turn("s6", "わかりません")
    assert result["context"]["pending_question"] is None
    assert "事前相談" in result["answer"]


def test_stream_yields_pieces_then_the_final_result(chat: ChatService) -> None:
    events = list(chat.stream("s7", "子ども医療費助成の準ずる法定事務は何ですか？"))
    final = events[-1]["final"]
    deltas = [e["delta"] for e in events[:-1]]
    assert len(deltas) > 3 and "".join(deltas) == final["answer"]
    assert final["turn"] == 1 and final["session"] == "s7"
    assert chat.history("s7")[1]["result"]["turn"] == 1


def test_answers_carry_citations_and_uncertainty_marks(chat: ChatService, db_assistant) -> None:  # noqa: ANN001
    result = chat.turn("s8", "届出はまだです。子ども医療費助成で情報連携を始めたい。何の届出ですか？")
    by_id = db_assistant.index.by_id
    assert result["citations"]
    for citation in result["citations"]:
        assert citation["quote"] in by_id[citation["source_id"]].text
        assert citation["as_of"] and citation["confidence"] in {"確認済み", "要確認"}
    assert "【要確認】" in result["answer"] or "（要確認）" in result["answer"]


def test_personal_data_is_masked_before_it_is_stored(chat: ChatService, tmp_path: Path) -> None:
    result = chat.turn("s9", "担当 03-1234-5678、個人番号 1234 5678 9012 の方の子ども医療費助成で何の届出が必要？")
    assert set(result["masked"]) >= {"phone", "my_number"}
    user_text = chat.history("s9")[0]["text"]
    assert "03-1234-5678" not in user_text and "[電話番号マスク済]" in user_text
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("chat.db*"))
    assert "03-1234-5678".encode() not in raw and "9012".encode() not in raw


def test_out_of_scope_message_does_not_inherit_context(chat: ChatService) -> None:
    chat.turn("s10", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    result = chat.turn("s10", "マイナンバーカードの更新手続きは？")
    assert result["out_of_scope"]
    assert result["rewritten_question"].startswith("マイナンバーカード")


def test_feedback_is_stored_and_validated(chat: ChatService) -> None:
    chat.turn("s11", "子ども医療費助成の事例は？")
    chat.feedback("s11", 1, 1, "わかりやすい。連絡先 03-1234-5678")
    stored = chat.store.feedback("s11")
    assert [(f.turn, f.rating) for f in stored] == [(1, 1)]
    assert "03-1234-5678" not in stored[0].comment
    with pytest.raises(InputError):
        chat.feedback("s11", 1, 5)
    with pytest.raises(InputError):
        chat.feedback("s11", 9, 1)


def test_bad_input_is_rejected(chat: ChatService) -> None:
    with pytest.raises(InputError):
        chat.turn("s12", "   ")
    with pytest.raises(InputError):
        chat.turn("", "子ども医療費助成の事例は？")


def test_reply_understanding() -> None:
    assert reply_polarity("はい、済んでいます") == "yes"
    assert reply_polarity("まだです") == "no"
    assert reply_polarity("未定です") == "unsure"
    assert reply_polarity("検討中") == "unsure"
    assert reply_polarity("実施していません") == "no"
    assert reply_polarity("来年度に実施予定") == "no"
    assert reply_polarity("教育委員会") is None
    assert canonical_answer("existing", "いいえ") == "届出はまだしていません。"
    assert "照会する情報" in canonical_answer("what_changes", "所得の情報を追加")
    assert "照会する情報" not in canonical_answer("what_changes", "情報は変わらず名称だけ")
    assert split_pieces("一文目。二文目。\n三行目") == ["一文目。", "二文目。", "\n", "三行目"]


SCRIPT = [
    *CONSULTATION_TURNS,
    ("マイナンバーカードを紛失しました", lambda r: r["out_of_scope"]),
]


def test_scripted_ten_turn_consultation(chat: ChatService) -> None:
    for number, (message, check) in enumerate(SCRIPT, start=1):
        result = chat.turn("script", message)
        assert result["turn"] == number
        assert check(result), (message, result["rewritten_question"], result["answer"][:300])
    assert len(chat.history("script")) == 2 * len(SCRIPT)


def test_a_turn_overtaken_by_another_process_is_worked_out_again(db_assistant, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    chat = ChatService(db_assistant)
    first = chat.turn("elsewhere", "子ども医療費助成で情報連携したい。何の届出が必要ですか？")
    established = chat.store.load_session("chat", "elsewhere").state
    real_load = chat.store.load_session
    reads = []

    def load_then_overtaken(kind: str, session_id: str):  # noqa: ANN202
        record = real_load(kind, session_id)
        if not reads:  # another process stores its first turn while this one works on its read
            chat.store.add_exchange("chat", "race", "子ども医療費助成で情報連携したい", first["answer"], first, established)
        reads.append(record)
        return record

    monkeypatch.setattr(chat.store, "load_session", load_then_overtaken)
    result = chat.turn("race", "まだです")
    assert len(reads) == 2 and result["turn"] == 2
    assert result["context"]["cases"] == [1] and result["notification_type"] == "new"
    stored = chat.store.load_session("chat", "race").state
    assert stored["cases"] == [1] and stored["facts"]["existing"] is False


def test_feedback_with_control_codes_and_undecodable_text_is_stored_clean(chat: ChatService) -> None:
    chat.turn("s12", "子ども医療費助成の事例は？")
    chat.feedback("s12", 1, -1, "出典が\x00古い\udc80です")
    assert [f.comment for f in chat.store.feedback("s12")] == ["出典が古いです"]
