import pytest

from assistant.citations import is_valid
from assistant.service import InputError

CONTRACT_KEYS = {
    "answer", "notification_type", "cases", "statutory", "out_of_scope", "needs_clarification",
    "clarifying_question", "citations",
}


def _all_citations_valid(assistant, result) -> bool:  # noqa: ANN001
    return all(is_valid(c, assistant.index.by_id) for c in result["citations"])


def test_notification_answer_conclusion_first_with_window_and_citations(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("ひとり親家庭等医療費助成で届出済みです。照会する情報に住民票関係情報を追加したいのですが、何の届出ですか。")
    assert CONTRACT_KEYS <= set(result)
    assert result["notification_type"] == "change"
    assert result["cases"] == [10]
    assert result["answer"].startswith("**結論**")
    assert "変更の届出" in result["answer"].split("**理由")[0]
    assert "年3回" in result["answer"]
    assert result["citations"] and _all_citations_valid(assistant, result)


def test_unclear_facts_lead_to_a_clarifying_question(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("子ども医療費助成の届出は何を出せばいいですか")
    assert result["notification_type"] is None
    assert result["needs_clarification"] and result["clarifying_question"]
    assert result["clarifying_question"] in result["answer"]


def test_statutory_and_out_of_scope(assistant) -> None:  # noqa: ANN001
    statutory = assistant.ask("児童手当の事務で情報連携するのに独自利用事務の届出は要りますか")
    assert statutory["statutory"] and "法定事務" in statutory["answer"] and _all_citations_valid(assistant, statutory)
    declined = assistant.ask("マイナンバーカードの暗証番号を忘れたときの再設定の方法は？")
    assert declined["out_of_scope"] and declined["citations"] == []
    chat = assistant.ask("今日の天気はどうですか")
    assert chat["out_of_scope"]


def test_uncertain_facts_are_marked(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("独自利用事務の情報連携の根拠条文は何号ですか")
    assert "19条9号" in result["answer"] or "第19条第9号" in result["answer"]
    if any(c["confidence"] == "要確認" for c in result["citations"]):
        assert "要確認" in result["answer"]


def test_personal_data_is_masked_before_use(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("不妊治療費助成で連携したい。申請者の個人番号は 1234 5678 9018 です。届出はまだです。")
    assert "1234 5678 9018" not in result["question"] and "my_number" in result["masked"]
    assert result["notification_type"] == "new"


@pytest.mark.parametrize("text", ["", "   \n\t ", "あ" * 100_000, "abc\x00def", "\x01\x02\x03\x04\x05\x06\x07\x08"])
def test_bad_input_gets_a_clear_error(assistant, text: str) -> None:  # noqa: ANN001
    with pytest.raises(InputError):
        assistant.ask(text)
    with pytest.raises(InputError):
        assistant.classify(text)


def test_mixed_script_input_is_answered(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("PPC への todoke-de: 号ズレ fix only, 差替え? 😀 Ω")
    assert result["answer"] and _all_citations_valid(assistant, result)


def test_stage_questions_list_the_check_points_of_that_stage(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("届出の前にどんな準備が必要ですか")
    conclusion = result["answer"].split("**理由")[0]
    for label in ("番号利用条例", "予算", "システム改修", "特定個人情報保護評価"):
        assert label in conclusion
    assert _all_citations_valid(assistant, result)
    review = assistant.ask("審査ではどこを見られますか")
    assert "類似" in review["answer"].split("**理由")[0]


def test_desk_instructions_in_qa_answers_are_not_quoted_to_the_asker(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("古い研修資料に独自利用事務の連携は番号法19条8号とあります。今も同じですか")
    conclusion = result["answer"].split("**理由")[0]
    assert "ください。 [" not in conclusion
    assert "第9号" in result["answer"] or "19条9号" in result["answer"]
