"""Single-turn answers through Assistant.ask: the conclusion answers the question, facts are cited."""

import re

import pytest

from assistant.answer_checks import hygiene
from assistant.citations import is_valid
from assistant.service import InputError

CONTRACT_KEYS = {
    "answer", "notification_type", "cases", "statutory", "out_of_scope", "needs_clarification",
    "clarifying_question", "citations",
}


def _all_citations_valid(assistant, result) -> bool:  # noqa: ANN001
    return all(is_valid(c, assistant.index.by_id) for c in result["citations"])


def _conclusion(result: dict) -> str:
    return result["answer"].split("\n\n", 1)[0]


def test_notification_answer_conclusion_first_with_window_and_citations(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("ひとり親家庭等医療費助成で届出済みです。照会する情報に住民票関係情報を追加したいのですが、何の届出ですか。")
    assert CONTRACT_KEYS <= set(result)
    assert result["notification_type"] == "change"
    assert result["cases"] == [10]
    assert _conclusion(result).startswith("変更の届出")
    assert "年3回" in result["answer"]
    assert result["citations"] and _all_citations_valid(assistant, result)
    assert all(c["confidence"] == "確認済み" for c in result["citations"] if c["source_id"] == "notice-change")


def test_unclear_facts_lead_to_a_clarifying_question(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("子ども医療費助成の届出は何を出せばいいですか")
    assert result["notification_type"] is None
    assert result["needs_clarification"] and result["clarifying_question"]
    assert result["clarifying_question"] in result["answer"]


def test_no_notification_type_when_nobody_asked_for_it(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("特定個人情報保護評価の見直しは、連携を始める前に必要ですか")
    assert result["notification_type"] is None and not result["needs_clarification"]
    assert "届出の種類" not in _conclusion(result)


def test_statutory_and_out_of_scope(assistant) -> None:  # noqa: ANN001
    statutory = assistant.ask("児童手当の事務で情報連携するのに独自利用事務の届出は要りますか")
    assert statutory["statutory"] and "法定事務" in statutory["answer"] and _all_citations_valid(assistant, statutory)
    declined = assistant.ask("マイナンバーカードの暗証番号を忘れたときの再設定の方法は？")
    assert declined["out_of_scope"] and declined["citations"] == []
    chat = assistant.ask("今日の天気はどうですか")
    assert chat["out_of_scope"]


def test_uncertain_facts_are_marked(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("別表第二はもうなくなったのですか")
    uncertain = [c for c in result["citations"] if c["confidence"] == "要確認"]
    assert uncertain, "the answer rests on an unconfirmed Q&A entry"
    body = result["answer"].split("**出典**")[0]
    for citation in uncertain:
        lines = [line for line in body.split("\n") if f"[{citation['number']}]" in line]
        assert lines and all("【要確認】" in line for line in lines)
    basis = assistant.ask("独自利用事務の情報連携の根拠条文は何号ですか")
    assert "第19条第9号" in basis["answer"] and "【要確認】" not in basis["answer"].split("\n")[0]


def test_confirmed_page_facts_are_not_marked_uncertain(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("届出の受付期間はいつですか")
    assert _conclusion(result).startswith("新規・変更・中止の届出は受付期間内（年3回）")
    assert "随時" in _conclusion(result)
    assert "【要確認】" not in _conclusion(result)


def test_personal_data_is_masked_before_use(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("不妊治療費助成で連携したい。申請者の個人番号は 1234 5678 9018 です。届出はまだです。何の届出？")
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
    assert not result["out_of_scope"]
    assert "差替え" in _conclusion(result) or result["needs_clarification"]
    assert _all_citations_valid(assistant, result)


def test_stage_questions_list_the_check_points_of_that_stage(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("届出の前にどんな準備が必要ですか")
    assert _conclusion(result).startswith("届出の事前準備では、次の4点")
    for label in ("番号利用条例", "予算", "システム改修", "特定個人情報保護評価"):
        assert label in result["answer"]
    assert _all_citations_valid(assistant, result)
    review = assistant.ask("審査ではどこを見られますか")
    assert _conclusion(review).startswith("個人情報保護委員会の審査では、次の3点")
    assert "類似" in review["answer"]


def test_the_count_of_cases_is_answered(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("事例は全部でいくつありますか")
    assert _conclusion(result).startswith("公表されている事例は35類型です")


def test_desk_instructions_in_qa_answers_are_not_quoted_to_the_asker(assistant) -> None:  # noqa: ANN001
    result = assistant.ask("古い研修資料に独自利用事務の連携は番号法19条8号とあります。今も同じですか")
    assert not re.search(r"(説明|案内)して(ください|下さい)", result["answer"])
    assert "第9号" in result["answer"] or "19条9号" in result["answer"]


@pytest.mark.parametrize(
    "text",
    [
        "ひとり親家庭等医療費助成で届出済みです。所得の情報を追加したい。何の届出？",
        "子ども医療費助成の準ずる法定事務は何ですか",
        "届出の前にどんな準備が必要ですか",
        "独自利用事務とは何ですか",
        "事例は全部でいくつありますか",
        "条例の題名が変わるだけです。届出は必要ですか",
    ],
)
def test_what_a_reader_sees_is_free_of_internal_names(assistant, text: str) -> None:  # noqa: ANN001
    seen = hygiene(assistant.ask(text))
    assert seen["internal_names"] == [] and seen["staff_notes"] == [] and not seen["duplicate_sources"]
