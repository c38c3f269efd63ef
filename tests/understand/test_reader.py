"""The learned reader on wordings it was not trained on: intents, facts, short replies, affairs, references."""

import pytest

from assistant.understand.data import load_utterances


@pytest.fixture(scope="module")
def reader(assistant):  # noqa: ANN001, ANN201
    return assistant.reader


@pytest.fixture(scope="module")
def training_texts(assistant) -> set[str]:  # noqa: ANN001
    return {u.text for u in load_utterances(assistant.settings.corpus_dir)}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("うちの町の紙おむつ支給事業、どの事例になりそう？", "case_fit"),
        ("準ずる法定事務ってどれになるんでしょう", "analogous_affair"),
        ("この改正だと、変更届と差し替えのどっちになりますか", "notification_type"),
        ("次の受付はいつ頃でしょうか", "timing"),
        ("届出前にやっておくべきことを一覧で", "preparation"),
        ("委員会の審査で見られるポイントは", "review_points"),
        ("事例っていくつあるんですか", "case_list"),
        ("B市への返信の下書きをお願いします", "reply_draft"),
        ("ご丁寧にありがとうございました", "greeting"),
        ("マイナカードの暗証番号を忘れた住民への対応は", "out_of_scope"),
    ],
)
def test_intent_of_new_wordings(reader, training_texts: set[str], text: str, intent: str) -> None:  # noqa: ANN001
    assert text not in training_texts
    assert reader.read(text).primary == intent


@pytest.mark.parametrize(
    ("text", "existing", "changes"),
    [
        pytest.param("昨年から連携していますが、照会項目に住民票関係情報を足したいです", "yes", {"info_added"},
                     marks=pytest.mark.xfail(strict=True, reason="足す is read as both adding and removing information")),
        ("届出はまだ一度もしていません", "no", set()),
        ("規則改正で号が一つずれました", None, {"renumber_typo"}),
        ("事業自体を今年度末でやめることになりました", None, {"abolished"}),
        ("事例番号に変更はありません。名称だけ変わります", None, {"rename"}),
    ],
)
def test_notification_facts(reader, text: str, existing: str | None, changes: set[str]) -> None:  # noqa: ANN001
    facts = reader.read(text).facts
    assert facts.existing == existing
    assert set(facts.changes) == changes


@pytest.mark.parametrize(("text", "polarity"), [("はい", "yes"), ("いいえ、まだです", "no"), ("ちょっと分からないです", "unsure")])
def test_short_replies(reader, text: str, polarity: str) -> None:  # noqa: ANN001
    reading = reader.read(text)
    assert reading.polarity == polarity
    assert reading.primary == "answer"


def test_two_affairs_give_one_item_each(reader) -> None:  # noqa: ANN001
    reading = reader.read("子ども医療費助成は届出済みですが、市営住宅の管理でも新たに連携したいと考えています。")
    cases = [a.cases[0] for a in reading.affairs]
    assert cases == [1, 7]


def test_statutory_affair_and_umbrella_name(reader) -> None:  # noqa: ANN001
    statutory = reader.read("児童手当の支給事務で連携できますか")
    assert statutory.affairs and statutory.affairs[0].statutory
    umbrella = reader.read("福祉医療費助成で連携したい")
    assert umbrella.affairs[0].ambiguous and umbrella.affairs[0].clarifying_question


def test_references_to_earlier_affairs(reader) -> None:  # noqa: ANN001
    assert reader.read("前者はどうなりますか").reference == 0
    assert reader.read("後者の届出は？").reference == -1
    assert reader.read("届出の種類は？").reference is None


def test_helpdesk_asker(reader) -> None:  # noqa: ANN001
    reading = reader.read("C町の担当者から、変更届でよいかと問い合わせがありました。どう回答すればよいでしょうか。")
    assert reading.asker == "helpdesk"


def test_off_topic_words_are_out_of_scope(reader) -> None:  # noqa: ANN001
    assert reader.read("おすすめの映画は？").primary == "out_of_scope"
