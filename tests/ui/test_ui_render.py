"""The pure rendering helpers behind the pages (no app, no browser)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from assistant.ui.render import (
    CONFIRMED,
    UNCONFIRMED,
    case_detail_markdown,
    case_rows,
    citations_html,
    highlight_quote,
    index_status_markdown,
    ingest_rows,
    markdown_text,
    masked_note,
    progress_html,
)

# A document chunk that tries every way Markdown or HTML could fetch or link something.
HOSTILE = (
    "かえで手当の説明です。![x](http://example.invalid/a.png) 詳しくは[link](http://example.invalid/page)を参照。\n"
    '<img src="http://example.invalid/b.png"> <a href="http://example.invalid/c">ここ</a> <b>太字</b>\n'
    "<script>alert(1)</script> <http://example.invalid/d> 参照 https://example.invalid/e と www.example.invalid\n"
    "[ref]: http://example.invalid/f\n見出し[ref]と![画像][ref] 連絡先 someone@example.invalid\n"
    "逃げる \\](http://example.invalid/g) と &lt;img src=x&gt;"
)
OUTSIDE = re.compile(r"(?i)<\s*(a|img|script|iframe|link|object|embed|video|audio|source|svg)\b|<[^>]*\b(href|src)\s*=")

CASE = {
    "case": 1,
    "name": "子どもの医療費助成に関する事務",
    "aliases": ["乳幼児医療費助成", "マル乳"],
    "analogous_statutory_affair": "児童福祉法による小児慢性特定疾病医療費の支給に関する事務",
    "analogous_statutory_confidence": CONFIRMED,
    "confidence": UNCONFIRMED,
    "as_of": "2023-03-03",
    "sources": ["S1", "UNKNOWN"],
    "case_number": "9-1",
    "old_appendix2_item": "9",
    "description": "医療保険の自己負担分を助成する事務。",
    "target_persons": ["乳幼児・児童"],
    "purpose_terms": ["育成"],
    "benefit": "自己負担分の助成",
    "information_kinds": ["地方税関係情報"],
    "example_affairs": ["○○市子ども医療費助成"],
}
OTHER = CASE | {"case": 2, "name": "ひとり親家庭等の医療費助成", "aliases": ["マル親"], "confidence": CONFIRMED,
                "example_affairs": [], "description": "一人親家庭の医療費の助成。"}


def test_highlight_marks_the_quote_and_escapes_html() -> None:
    html = highlight_quote("前文<b>です。\n引用する部分です。\n後文", "引用する部分です。")
    assert "<mark>引用する部分です。</mark>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_highlight_falls_back_to_normalised_text_then_to_the_quote_alone() -> None:
    assert "<mark>ＡＢＣ 情報</mark>" not in highlight_quote("ABC  情報", "ＡＢＣ 情報")
    assert "<mark>ABC 情報</mark>" in highlight_quote("ABC  情報", "ＡＢＣ 情報")
    missing = highlight_quote("本文", "どこにもない")
    assert missing.startswith("<mark>どこにもない</mark>") and missing.endswith("本文")


def test_citations_html_shows_title_locator_as_of_confidence_and_text() -> None:
    citation = {"source_id": "c-1", "title": "事例(1)", "locator": "cases.yaml 事例1", "quote": "助成する",
                "as_of": "2023-03-03", "confidence": UNCONFIRMED}
    source = {"text": "医療費を助成する事務", "sources": [{"title": "委員会の事例一覧", "url": "https://example.jp/a", "as_of": "2023-03-03"}]}
    html = citations_html([citation], lambda source_id: source if source_id == "c-1" else None)
    for text in ("[1]", "事例(1)", "cases.yaml 事例1", "2023-03-03 時点", "要確認", "<mark>助成する</mark>", "委員会の事例一覧"):
        assert text in html
    assert "badge-check" in html
    assert "出典がありません" in citations_html([], lambda _: None)
    unknown = citations_html([citation | {"confidence": CONFIRMED}], lambda _: None)
    assert "badge-ok" in unknown and "<mark>助成する</mark>" in unknown


def test_progress_html_clamps_and_reports_percent() -> None:
    assert "1 / 4 問（25%）" in progress_html(1, 4)
    assert "width:100%" in progress_html(9, 4)
    assert "0 / 0 問（0%）" in progress_html(3, 0)


def test_case_rows_search_and_filter() -> None:
    cases = [CASE, OTHER]
    assert [r[0] for r in case_rows(cases)] == [1, 2]
    assert [r[0] for r in case_rows(cases, "マル乳")] == [1]
    assert [r[0] for r in case_rows(cases, "医療費 一人親")] == [2]
    assert [r[0] for r in case_rows(cases, "(2)")] == [2]
    assert [r[0] for r in case_rows(cases, "", CONFIRMED)] == [2]
    assert case_rows(cases, "存在しない語") == []


def test_case_detail_lists_statutory_affair_conditions_aliases_examples_sources() -> None:
    text = case_detail_markdown(CASE, {"S1": {"title": "事例一覧（委員会）", "as_of": "2023-03-03", "url": None}})
    for part in ("### (1) 子どもの医療費助成に関する事務", "児童福祉法による小児慢性特定疾病医療費", f"（{CONFIRMED}）",
                 "乳幼児・児童", "育成", "マル乳", "○○市子ども医療費助成", "事例一覧（委員会）（2023-03-03 時点）",
                 "UNKNOWN", "事例番号 9-1"):
        assert part in text


def test_ingest_rows_and_index_status_are_japanese() -> None:
    rows = ingest_rows([{"path": "/tmp/x/手引.pdf", "status": "error", "message": "読めません", "chunks": 0}])
    assert rows == [["手引.pdf", "エラー", 0, "読めません"]]
    status = index_status_markdown({"state": "stale", "stale_reasons": ["documents"], "exists": True,
                                    "documents": 1, "chunks": 10, "built_at": "2026-01-01T00:00:00+00:00",
                                    "documents_registered": 2, "damaged_document_records": []})
    assert "再構築が必要" in status and "登録文書が変わった" in status and "**チャンク数:** 10" in status
    assert "未構築" in index_status_markdown({"state": "missing", "exists": False, "documents_registered": 0})


def test_masked_note_names_the_kinds() -> None:
    assert masked_note([]) == ""
    assert "個人番号、電話番号" in masked_note(["my_number", "phone"])
    note = masked_note(["name", "email", "number_12"])
    assert "氏名、メールアドレス、12桁の番号" in note and "name" not in note and "number_12" not in note


def test_document_text_is_shown_as_text_in_the_sources_panel() -> None:
    citation = {"source_id": "doc-1", "title": "<b>資料</b>", "locator": "[p](http://example.invalid/x)",
                "quote": "かえで手当の説明です。", "confidence": UNCONFIRMED}
    html = citations_html([citation], lambda _: {"text": HOSTILE, "sources": []})
    assert "<mark>かえで手当の説明です。</mark>" in html, "the quote is still highlighted"
    body = html.replace("<mark>", "").replace("</mark>", "")
    assert not OUTSIDE.search(body), body
    assert "&lt;img src=&quot;http://example.invalid/b.png&quot;&gt;" in html and "&lt;b&gt;資料&lt;/b&gt;" in html


def test_document_text_in_a_markdown_answer_stays_text() -> None:
    answer = f"**結論**\n\n- 【要確認】{HOSTILE} [1]\n\n**出典**\n[1] 資料"
    rendered = MarkdownIt("commonmark", {"html": True}).render(markdown_text(answer))
    assert not OUTSIDE.search(rendered), rendered
    assert "<strong>結論</strong>" in rendered and "[1]" in rendered, "the answer's own Markdown still works"
    visible = re.sub(r"<[^>]+>", "", rendered).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    for text in ("![x](http://example.invalid/a.png)", '<img src="http://example.invalid/b.png">', "[link](http://example.invalid/page)",
                 "https://example.invalid/e", "www.example.invalid", "someone@example.invalid", "&lt;img src=x&gt;"):
        assert text in visible, f"{text!r} is shown as written"
    for bare in ("https://example.invalid/e", "www.example.invalid", "someone@example.invalid"):
        assert bare not in markdown_text(bare), "GFM would turn it into a link"


def test_an_unknown_statutory_affair_is_shown_as_unknown_not_none() -> None:
    unknown = CASE | {"case": 34, "analogous_statutory_affair": None, "analogous_statutory_confidence": UNCONFIRMED}
    none = CASE | {"case": 35, "analogous_statutory_affair": None, "analogous_statutory_confidence": CONFIRMED}
    rows = {r[0]: r[3] for r in case_rows([CASE, unknown, none])}
    assert rows == {1: CASE["analogous_statutory_affair"], 34: "不明（要確認）", 35: "（なし）"}
    detail = case_detail_markdown(unknown, {})
    assert "#### 準ずる法定事務\n不明（要確認）\n" in detail and "（なし）" not in detail


def test_links_to_copies_are_labelled_in_the_case_detail_and_the_sources_panel() -> None:
    titles = {"S1": {"title": "写しの資料", "as_of": "2017-01-01", "url": "https://expydoc.com/doc/1",
                     "link_label": "転載サイトの写し（原典のページではありません）"}}
    assert "<https://expydoc.com/doc/1>　［転載サイトの写し（原典のページではありません）］" in case_detail_markdown(CASE, titles)
    citation = {"source_id": "case-1", "title": "事例", "quote": "助成", "confidence": CONFIRMED, "number": 1}
    source = {"text": "医療費を助成する。", "sources": [{"title": "写しの資料", "url": "https://x.cache.yimg.jp/a",
                                                    "link_label": "キャッシュ（検索サービスが保存した写し）"}]}
    assert "［キャッシュ（検索サービスが保存した写し）］" in citations_html([citation], lambda _sid: source)


def test_answer_markers_become_links_to_that_answers_sources() -> None:
    from assistant.ui.render import answer_markdown

    text = "変更の届出です。 [1][2]\n\n**出典**\n[1] 手引（2024-05-27時点）\n[2] Q&A（2024-05-27時点）"
    shown = answer_markdown(text, 3)
    assert "[[1]](#cite-3-1)[[2]](#cite-3-2)" in shown and "[[2]](#cite-3-2) Q&amp;A" in shown
    html = MarkdownIt().render(shown)
    assert '<a href="#cite-3-1">[1]</a>' in html and "http" not in html
    assert answer_markdown(text) == markdown_text(text), "without a turn the markers stay text"
    hostile = answer_markdown("詳しくは[ここ](http://example.invalid/x) [1]", 2)
    assert "example.invalid" not in "".join(re.findall(r'href="([^"]*)"', MarkdownIt().render(hostile)))


def test_the_question_map_marks_questions_left_unanswered() -> None:
    from assistant.ui.render import letter_sources, question_map_html

    html = question_map_html([
        {"question": "何の届出が必要ですか", "paragraph": 1, "coverage": "answered"},
        {"question": "いつ出せますか", "paragraph": 2, "coverage": "unanswered"},
        {"question": "費用は", "paragraph": 3, "coverage": "asks_back"},
    ])
    assert html.count('class="q-row"') == 1 and 'class="q-row unanswered"' in html and 'class="q-row partial"' in html
    assert "回答が記載されていない質問が 2 件" in html and "未回答" in html
    everything = question_map_html([{"question": "何の届出", "paragraph": 1, "coverage": "answered"}])
    assert "すべての質問（1 件）に回答した段落があります" in everything
    letter = letter_sources([
        {"number": 1, "label": "手引・届出の種類", "as_of": "2024-05-27", "source_id": "guidance-x"},
        {"number": 1, "label": "手引・届出の種類", "as_of": "2024-05-27", "source_id": "guidance-y"},
        {"number": 2, "label": "Q&A 問3", "as_of": "2024-05-27", "source_id": "qa-3"},
    ])
    assert letter == "[1] 手引・届出の種類（2024-05-27時点）\n[2] Q&A 問3（2024-05-27時点）"


def test_gradio_words_are_japanese_for_every_browser_language() -> None:
    from assistant.ui.locale import GRADIO_LOCALES, JAPANESE, japanese_everywhere

    translations = japanese_everywhere().translations_dict
    assert set(translations) == set(GRADIO_LOCALES) and {"en", "ja", "zh-CN"} <= set(translations)
    for words in translations.values():
        assert words == JAPANESE
    assert not any(re.fullmatch(r"[A-Za-z .,'!?\-]+", text) for text in JAPANESE.values())
    for key in ("chatbot.copy_message", "chatbot.like", "chatbot.clear", "common.error", "errors.use_via_api"):
        assert key in JAPANESE
