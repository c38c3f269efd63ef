"""Names here are written for the tests (not copied from the corpus aliases or eval/)."""

import pytest

from assistant.citations import is_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("桜川町子ども医療費支給条例に基づく通院・入院費の支給（高校生年代まで）", 1),
        ("母子・父子家庭の医療費を市が助成する制度", 10),
        ("重度障がい者の医療費助成（身体障害者手帳1級・2級）", 14),
        ("特定不妊治療費助成事業", 32),
        ("準要保護児童生徒への学用品費の援助", 27),
        ("私立中学校に通う生徒の授業料を補助する県の事業", 35),
        ("放課後児童クラブ利用料の減免（ひとり親・多子世帯）", 30),
        ("市営住宅（公営住宅法によらない単独住宅）の家賃決定", 7),
    ],
)
def test_ranks_the_fitting_case_first_with_valid_citations(assistant, text: str, expected: int) -> None:  # noqa: ANN001
    result = assistant.classify(text)
    assert result["candidates"][0]["case"] == expected
    assert not result["statutory"] and not result["no_fit"]
    assert result["candidates"][0]["reasons"]
    for citation in result["candidates"][0]["citations"]:
        assert is_valid(citation, assistant.index.by_id)


def test_statutory_affairs_are_recognised(assistant) -> None:  # noqa: ANN001
    for text in ("児童扶養手当の支給", "介護保険の保険給付", "国民健康保険税の賦課"):
        result = assistant.classify(text)
        assert result["statutory"], text
        assert result["statutory_affairs"]
    own = assistant.classify("児童扶養手当受給者への市独自の上乗せ手当")
    assert not own["statutory"]


def test_no_fit_and_umbrella_names(assistant) -> None:  # noqa: ANN001
    result = assistant.classify("粗大ごみ収集の手数料減免")
    assert result["no_fit"] and not result["statutory"]
    assert any("事前相談" in note for note in result["notes"])
    umbrella = assistant.classify("福祉医療費の支給")
    assert umbrella["ambiguous"] and umbrella["clarifying_question"]
    assert {c["case"] for c in umbrella["candidates"]} <= {1, 10, 14, 20, 34}
    assert assistant.classify("福祉医療費の支給（ひとり親家庭）")["candidates"][0]["case"] == 10


def test_contract_shape(assistant) -> None:  # noqa: ANN001
    result = assistant.classify("遺児手当")
    assert list(result)[:3] == ["candidates", "statutory", "no_fit"]
    assert 1 <= len(result["candidates"]) <= 5
    candidate = result["candidates"][0]
    assert {"case", "name", "score", "reasons", "citations"} <= set(candidate)
    assert 0.0 <= candidate["score"] <= 1.0
    assert set(candidate["citations"][0]) >= {"source_id", "title", "locator", "quote", "as_of", "confidence"}
