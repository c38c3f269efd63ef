"""Renderings of the answer object: one numbering, each source listed once, marks where facts are unconfirmed."""

from assistant.answer.model import Answer, Excerpt, Statement
from assistant.answer.render import citation_numbers, citations_for_output, source_entries, to_markdown, to_plain
from assistant.citations import Citation


def _citation(source_id: str, quote: str, label: str, confidence: str = "確認済み", as_of: str = "2024-05-27") -> Citation:
    return Citation(source_id, "title", "locator", quote, as_of, confidence, label)


def _answer() -> Answer:
    answer = Answer()
    a = answer.cite(_citation("notice-change", "定義: …", "委員会ページ・届出の種類"))
    b = answer.cite(_citation("notice-change", "受付: …", "委員会ページ・届出の種類"))
    c = answer.cite(_citation("qa-004", "別表第二は…", "委員会ページ・よくある質問", "要確認", "2025-06-01"))
    d = answer.cite(_citation("doc-x-0001", "本町では…", "町の資料（p.2）", "要確認", "2023-04-01"))
    answer.conclusion = [Statement("変更の届出に当たります。", (a,))]
    answer.reasons = [Statement("受付期間内に提出します。", (b,)), Statement("主務省令で定めます。", (c,), uncertain=True)]
    answer.related = [Excerpt(d, "本町では…", uncertain=True)]
    answer.clarifying_question = "いつから連携しますか。"
    return answer


def test_citations_of_one_source_share_one_number_in_reading_order() -> None:
    answer = _answer()
    entries = source_entries(answer)
    assert [e.label for e in entries] == ["委員会ページ・届出の種類", "委員会ページ・よくある質問", "町の資料（p.2）"]
    assert citation_numbers(answer) == {0: 1, 1: 1, 2: 2, 3: 3}
    assert entries[1].uncertain and not entries[0].uncertain and entries[1].as_of == "2025-06-01"


def test_markdown_marks_unconfirmed_statements_and_lists_each_source_once() -> None:
    text = to_markdown(_answer())
    assert text.startswith("変更の届出に当たります。 [1]")
    assert "- 【要確認】主務省令で定めます。 [2]" in text
    assert "**確認させてください:** いつから連携しますか。" in text
    assert "> 【要確認】本町では… [3]" in text
    sources = text.split("**出典**", 1)[1].strip().split("\n")
    assert sources == ["[1] 委員会ページ・届出の種類（2024-05-27時点）", "[2] 委員会ページ・よくある質問（2025-06-01時点、要確認）",
                       "[3] 町の資料（p.2）（2023-04-01時点、要確認）"]


def test_plain_text_has_no_markdown_and_the_same_numbers() -> None:
    text = to_plain(_answer())
    assert "**" not in text and "> " not in text
    assert "変更の届出に当たります。 [1]" in text and "（出典）" in text


def test_machine_citations_carry_the_number_and_label() -> None:
    output = citations_for_output(_answer())
    assert [(c["source_id"], c["number"]) for c in output] == [("notice-change", 1), ("notice-change", 1), ("qa-004", 2), ("doc-x-0001", 3)]
    assert {"source_id", "title", "locator", "quote", "as_of", "confidence", "label"} <= set(output[0])


def test_the_same_quote_is_cited_once() -> None:
    answer = Answer()
    first = answer.cite(_citation("a", "同じ引用", "L"))
    assert answer.cite(_citation("a", "同じ引用", "L")) == first and len(answer.citations) == 1
