import pytest

from assistant.advise.notify import advise_notification, is_notification_question


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("高齢者医療費助成で来年度から連携を開始したい。届出はまだ出していません。", "new"),
        ("届出済みの事務で、照会する情報に地方税関係情報を追加します。何の届出？", "change"),
        ("届出済みの事務の照会項目から年金給付関係情報を削除したい", "change"),
        ("既に届け出ている就学援助に別の事例番号を追加したい", "change"),
        ("条例改正で号ずれが生じました。届出はどうすれば？", "replace"),
        ("届出書の事務名に誤記がありました", "replace"),
        ("事業を令和8年3月末で廃止します。届出済みです。", "discontinue"),
    ],
)
def test_decides_from_stated_facts(text: str, expected: str) -> None:
    assert is_notification_question(text)
    advice = advise_notification(text)
    assert advice.notification_type == expected
    assert advice.reasons


@pytest.mark.parametrize(
    "text",
    [
        "就学援助の届出はどれを出せばいいですか",
        "所管を教育委員会から市長部局に移します。届出は？",
        "対象者を中学生から高校生まで広げます。届出済みです。どうすれば？",
        "要綱から規則に改めます。届出は何が必要？",
    ],
)
def test_asks_one_question_when_facts_do_not_decide(text: str) -> None:
    advice = advise_notification(text)
    assert advice.notification_type is None
    assert advice.needs_clarification and advice.clarifying_question.endswith(("か。", "。", "？"))


def test_general_procedure_question_is_not_a_notification_decision() -> None:
    assert not is_notification_question("届出書の様式はいつ配布されますか")
