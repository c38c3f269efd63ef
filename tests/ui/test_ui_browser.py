"""End to end in headless Chromium: what a municipal officer, a help desk and an administrator see and do."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from ui_support import CHECKLIST_ANSWERS, checklist_answer, pick_file

PlaywrightTimeout = pytest.importorskip("playwright.sync_api", reason="playwright がインストールされていません").TimeoutError

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTION = "子どもの医療費助成で住民税の情報を照会したいです。届出は必要ですか？"
MAX_CHECKLIST_INPUTS = 120
STEP_BY_LABEL = {
    "団体名": "profile-municipality",
    "担当部署": "profile-department",
    "担当者": "profile-person",
    "連絡先": "profile-contact",
    "事務の名称": "affair-name",
    "根拠規範": "affair-basis",
    "実施機関": "affair-body",
    "対象者": "affair-targets",
    "目的": "affair-purpose",
    "給付の内容": "affair-benefit",
    "当てはまる事例": "case",
    "届出の種類": "notification",
    "連携開始の希望時期": "schedule",
    "委員会への確認事項": "commission-questions",
}


def open_app(page, url: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.wait_for_selector("#chat-input textarea")
    page.wait_for_selector("#viewer-label :text('ログイン')")  # the page's load event has run


def open_tab(page, name: str) -> None:  # noqa: ANN001
    page.get_by_role("tab", name=name).click()


def assert_offline_and_japanese(page, app) -> None:  # noqa: ANN001
    """Neither the page nor the server reached for another machine, and the page is in Japanese."""
    assert page.outside_requests == [], f"the page requested: {page.outside_requests}"
    assert app.outside_connections() == [], f"the server connected to: {app.outside_connections()}"
    assert page.evaluate("document.documentElement.lang").startswith("ja")


def test_chat_answer_shows_citations_and_takes_feedback(page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    open_app(page, running_app.url)
    assert "独自利用事務 情報連携 事前相談アシスタント" in page.title()
    for tab in ("相談チャット", "事前チェックリスト", "回答案作成", "事例一覧", "資料管理"):
        assert page.get_by_role("tab", name=tab).is_visible()
    page.fill("#chat-input textarea", QUESTION)
    page.click("#chat-send")
    page.wait_for_selector("#chat-sources .citation")
    first = page.locator("#chat-sources .citation").first
    assert re.search(r"\[1\]", first.inner_text())
    assert re.search(r"確認済み|要確認", first.inner_text())
    assert "時点" in first.inner_text()
    first.locator("summary").click()
    mark = first.locator(".source-text mark")
    assert mark.is_visible() and mark.inner_text().strip()
    bot = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']").last
    assert "出典" in bot.inner_text()
    page.screenshot(path=str(artifacts / "chat.png"), full_page=True)

    page.locator("#chatbot button[aria-label='役に立った']").last.click()  # the thumbs-up on the message, in Japanese
    page.wait_for_selector("#chat-feedback-status :text('1 番目の回答に 👍 を記録しました')")
    suggestions = page.locator("#chat-suggestions button")
    if suggestions.count():
        suggestion = suggestions.first.inner_text().strip()
        suggestions.first.click()
        page.wait_for_function(
            """([text]) => {
                const chat = document.querySelector('#chatbot');
                const busy = chat.querySelector('[data-testid="status-tracker"]:not(.hide)');
                const users = chat.querySelectorAll('.message-row.user-row');
                return !busy && users.length === 2 && users[1].innerText.includes(text)
                    && chat.querySelectorAll('.message-row.bot-row').length === 2;
            }""",
            arg=[suggestion],
        )
    page.screenshot(path=str(artifacts / "chat-feedback.png"), full_page=True)
    assert_offline_and_japanese(page, running_app)


def test_checklist_runs_to_the_download(page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    open_app(page, running_app.url)
    open_tab(page, "事前チェックリスト")
    page.click("#checklist-start")
    page.wait_for_selector("#checklist-question :text('質問 1（作成者：団体名）')")
    assert "0 / " in page.inner_text("#checklist-progress")
    assert re.search(r"全 \d+ 問中、残り \d+ 問", page.inner_text("#checklist-question"))
    page.screenshot(path=str(artifacts / "checklist-start.png"), full_page=True)
    state = page.locator("#checklist-question")
    for step, shown in (("profile-municipality", "質問 2（作成者：担当部署）"), ("profile-department", "質問 3（作成者：担当者）"),
                        ("profile-person", "質問 4（作成者：連絡先）"), ("profile-contact", "質問 5（事務の概要：事務の名称）")):
        answer_in_page(page, CHECKLIST_ANSWERS[step], shown)
    before = state.inner_text()
    page.click("#checklist-yes")  # a bare はい is not the affair's name
    page.wait_for_selector("#checklist-question :text('「事務の名称」として記録できません')", timeout=90_000)
    assert "質問 5（事務の概要：事務の名称）" in state.inner_text() and state.inner_text() != before
    page.screenshot(path=str(artifacts / "checklist-refused-yes.png"), full_page=True)
    answer_in_page(page, CHECKLIST_ANSWERS["affair-name"], "質問 6（事務の概要：根拠規範）")
    answer_in_page(page, CHECKLIST_ANSWERS["affair-basis"], "質問 7（事務の概要：実施機関）")
    page.click("#checklist-back")
    page.wait_for_selector("#checklist-question :text('一つ前の質問に戻りました')", timeout=90_000)
    assert "質問 6（事務の概要：根拠規範）" in state.inner_text()
    page.screenshot(path=str(artifacts / "checklist-back.png"), full_page=True)
    previous, repeats, asked, remaining = "", 0, [], []
    for _ in range(MAX_CHECKLIST_INPUTS):
        text = state.inner_text()
        if "チェックリストは完了しました" in text:
            break
        repeats = repeats + 1 if text == previous else 0
        previous = text
        step = step_for_question(text)
        asked.append(step)
        remaining.append(int(re.search(r"残り (\d+) 問", text).group(1)))
        if step == "schedule" and "既に過ぎています" not in text and repeats == 0 and "past" not in asked:
            asked.append("past")
            answer_in_page(page, "2020年4月", "2020年4月は既に過ぎています")  # a clear word; nothing is recorded
            page.screenshot(path=str(artifacts / "checklist-past-date.png"), full_page=True)
            continue
        answer = checklist_answer({"step": step}, repeats)
        if answer == "はい":
            page.click("#checklist-yes")
        elif answer == "スキップ":
            page.click("#checklist-skip")
        else:
            page.fill("#checklist-answer textarea, #checklist-answer input", answer)
            page.click("#checklist-submit")
        wait_for_new_question(page, text)
    assert "チェックリストは完了しました" in state.inner_text()
    assert asked.count("affair-targets") == 1 and asked.count("affair-purpose") == 1, "asked once each"
    assert "req-target-persons" not in asked and "past" in asked and "commission-questions" in asked
    assert remaining == sorted(remaining, reverse=True), "the remaining count only falls"
    progress = page.inner_text("#checklist-progress")
    done, total = map(int, re.search(r"(\d+) / (\d+) 問", progress).groups())
    assert 0 < done <= total
    assert CHECKLIST_ANSWERS["affair-name"] in page.inner_text("#checklist-items")
    page.click("#checklist-export")
    link = page.locator("#checklist-sheet a[download$='.md']").first
    link.wait_for()
    with page.expect_download() as download_info:
        link.click()
    target = artifacts / "事前相談シート.md"
    download_info.value.save_as(target)
    markdown = target.read_text(encoding="utf-8")
    assert CHECKLIST_ANSWERS["affair-name"] in markdown and "- 担当者: [氏名マスク済]" in markdown
    assert CHECKLIST_ANSWERS["commission-questions"].rstrip("？") in markdown
    page.get_by_label("Word (.docx)").check()
    page.click("#checklist-export")
    page.wait_for_selector("#checklist-sheet a[download$='.docx']")
    with page.expect_download() as download_info:
        page.locator("#checklist-sheet a[download$='.docx']").first.click()
    word = artifacts / "事前相談シート.docx"
    download_info.value.save_as(word)
    assert zipfile.is_zipfile(word)
    page.fill("#checklist-person input, #checklist-person textarea", "山田 太郎")
    page.get_by_label("PDF (.pdf)").check()
    page.click("#checklist-export")
    page.wait_for_selector("#checklist-sheet a[download$='.pdf']")
    with page.expect_download() as download_info:
        page.locator("#checklist-sheet a[download$='.pdf']").first.click()
    pdf = artifacts / "事前相談シート.pdf"
    download_info.value.save_as(pdf)
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    text = "".join(p.extract_text() for p in reader.pages)
    assert "山田 太郎" in text and CHECKLIST_ANSWERS["affair-name"] in text and "委員会への確認事項" in text
    assert (round(float(reader.pages[0].mediabox.width)), round(float(reader.pages[0].mediabox.height))) == (595, 842)
    page.screenshot(path=str(artifacts / "checklist-done.png"), full_page=True)
    assert_offline_and_japanese(page, running_app)


def answer_in_page(page, answer: str, shown: str) -> None:  # noqa: ANN001
    """Type an answer, send it and wait until the question area shows `shown`."""
    page.fill("#checklist-answer textarea, #checklist-answer input", answer)
    page.click("#checklist-submit")
    page.wait_for_selector(f"#checklist-question :text('{shown}')", timeout=90_000)


def wait_for_new_question(page, old: str) -> None:  # noqa: ANN001
    """Wait until the question has been replaced and its update is complete (a question asked again looks the same)."""
    try:
        page.wait_for_function(
            """([old]) => {
                const q = document.querySelector('#checklist-question');
                const busy = q && q.querySelector('[data-testid="status-tracker"]:not(.hide)');
                return q && !busy && q.innerText !== old;
            }""",
            arg=[old],
            timeout=5_000,
        )
    except PlaywrightTimeout:
        pass  # the same question again (the answer was not accepted); the caller counts repeats


def step_for_question(text: str) -> str:
    """The checklist step id for the label shown in the question heading, e.g. 「（事務の概要：事務の名称）」."""
    match = re.search(r"質問 \d+（[^：）]*：([^）]+)）", text)
    return STEP_BY_LABEL.get(match.group(1), "") if match else ""


REPLY_INQUIRY = """件名: 子ども医療費助成の情報連携について
〇〇市こども課です。子ども医療費助成について、次の2点を教えてください。
1. 住民税の情報を照会するには、どの事例に当たりますか。
2. 届出はいつ提出できますか。
連絡先 090-1234-5678"""


def test_reply_draft_maps_questions_to_paragraphs_and_cites_sources_as_a_letter(page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    open_app(page, running_app.url)
    open_tab(page, "回答案作成")
    page.fill("#reply-inquiry textarea", REPLY_INQUIRY)
    page.click("#reply-draft-button")
    draft = page.locator("#reply-draft textarea")
    page.wait_for_function("document.querySelector('#reply-draft textarea')?.value?.length > 20")
    assert "090-1234-5678" not in draft.input_value()
    assert "電話番号" in page.inner_text("#reply-masked")
    rows = page.locator("#reply-map tr.q-row")
    rows.first.wait_for()
    assert rows.count() == 2
    first, second = (rows.nth(i).inner_text() for i in range(2))
    assert "住民税の情報を照会" in first and "1." in first and "届出はいつ提出" in second and "2." in second
    for number in ("1. ", "2. "):
        assert number in draft.input_value(), "each listed paragraph is in the draft"
    letter = page.locator("#reply-letter-sources textarea").input_value()
    assert letter.startswith("[1] ") and "時点" in letter
    assert not re.search(r"\.(ya?ml|md|json)|\b(qa|case|doc|notice)-", letter), "no file names or ids in a letter"
    page.locator("#reply-draft button[aria-label], #reply-draft button[title]").first.wait_for()
    draft.fill(draft.input_value() + "\n（確認のうえ送付）")
    page.click("#reply-export")
    link = page.locator("#reply-file a[download$='.txt']").first
    link.wait_for()
    with page.expect_download() as download_info:
        link.click()
    saved = artifacts / "回答案.txt"
    download_info.value.save_as(saved)
    assert "確認のうえ送付" in saved.read_text(encoding="utf-8")
    page.screenshot(path=str(artifacts / "reply.png"), full_page=True)
    assert_offline_and_japanese(page, running_app)


def test_cases_table_search_and_detail(page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    open_app(page, running_app.url)
    open_tab(page, "事例一覧")
    page.fill("#cases-query input, #cases-query textarea", "マル乳")
    table = page.locator("#cases-table")
    table.get_by_text("小児慢性特定疾患児日常生活用具").wait_for(state="detached")  # case (2) is filtered out
    table.get_by_text("子どもの医療費助成に関する事務", exact=False).locator("visible=true").first.click()
    page.wait_for_selector("#cases-detail :text('準ずる法定事務')")
    detail = page.inner_text("#cases-detail")
    for part in ("子どもの医療費助成", "児童福祉法", "別名・通称", "事務の例", "出典"):
        assert part in detail
    assert "転載サイトの写し" in detail, "the copies of the commission's papers on reposting sites are labelled"
    page.screenshot(path=str(artifacts / "cases.png"), full_page=True)
    assert_offline_and_japanese(page, running_app)


def test_case_34_shows_an_unknown_statutory_affair_as_unknown(page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    open_app(page, running_app.url)
    open_tab(page, "事例一覧")
    page.fill("#cases-query input, #cases-query textarea", "妊産婦")
    table = page.locator("#cases-table")
    table.get_by_text("子どもの医療費助成に関する事務", exact=False).first.wait_for(state="detached")
    name = table.get_by_text("妊産婦の医療費助成", exact=False).locator("visible=true").first
    name.wait_for()
    assert "不明（要確認）" in table.inner_text() and "（なし）" not in table.inner_text()
    name.click()
    page.wait_for_selector("#cases-detail :text('妊産婦の医療費助成')")
    detail = page.inner_text("#cases-detail")
    assert "不明（要確認）" in detail and "（なし）" not in detail
    page.screenshot(path=str(artifacts / "cases-34.png"), full_page=True)


def test_administrator_uploads_a_municipal_document_and_removes_it(page, running_app, artifacts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    document = tmp_path / "ブラウザから登録した要綱.md"
    document.write_text("# もみじ市の要綱\n\nもみじ手当は、もみじ市が独自に支給する手当です。\n", encoding="utf-8")
    open_app(page, running_app.url)
    open_tab(page, "資料管理")
    page.wait_for_selector("#admin-status :text('索引の状態')")
    assert page.locator("#admin-confidence input[value='確認済み']").is_checked(), "official material: 確認済み"
    page.locator("#admin-scope label", has_text="団体の資料").click()
    page.wait_for_function("document.querySelector(\"#admin-confidence input[value='要確認']\")?.checked")
    pick_file(page, "#admin-files", document, artifacts)
    page.fill("#admin-title input, #admin-title textarea", "もみじ市 独自給付要綱 ブラウザ登録")
    page.fill("#admin-municipality input, #admin-municipality textarea", "もみじ市")
    page.fill("#admin-as-of input, #admin-as-of textarea", "令和7年4月1日")
    page.click("#admin-ingest")
    page.wait_for_selector("#admin-message :text('索引を差分で更新しました')", timeout=180_000)
    results = page.inner_text("#admin-results")
    assert document.name in results and "追加" in results and "もみじ市の利用者" in results
    page.wait_for_function(f"!document.querySelector('#admin-files')?.innerText.includes({document.stem!r})")
    documents = page.inner_text("#admin-documents")
    assert "もみじ市 独自給付要綱 ブラウザ登録" in documents and "団体の資料（もみじ市）" in documents
    assert "2025-04-01" in documents and "要確認" in documents
    page.screenshot(path=str(artifacts / "admin.png"), full_page=True)
    page.click("#admin-ingest")  # the same 登録 again: the picker is empty, nothing is processed twice
    page.wait_for_selector(".toast-body :text('登録するファイルを選んでください')")
    assert page.inner_text("#admin-results").count(document.name) == 1
    page.locator("#admin-remove").click()
    entry = page.locator(".admin-document", has_text="もみじ市 独自給付要綱 ブラウザ登録")
    entry.get_by_role("button", name="削除").click()
    page.wait_for_selector("#admin-message :text('文書を削除しました')", timeout=180_000)
    page.wait_for_function("!document.querySelector('#admin-documents')?.innerText.includes('もみじ市 独自給付要綱')")
    page.screenshot(path=str(artifacts / "admin-removed.png"), full_page=True)
    assert_offline_and_japanese(page, running_app)
