"""The consultation page in headless Chromium, on a desktop (1366×900) and a phone (390×844): sending, reading an
answer from its start, the consultation list, markers that open their sources, feedback on a message, an empty
send, Japanese in an English browser, one scroll on a phone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright がインストールされていません")

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
FIRST = "子どもの医療費助成の準ずる法定事務は何ですか？"
SECOND = "市営住宅の管理事務で連携を始めたい。どの事例に当たりますか"
FOLLOW_UP = "それはいつ出せますか"
LONG = "子どもの医療費助成で、住民税の情報を情報連携で照会したいです。照会できる情報の範囲は？"
# English words Gradio would show on its own; our own labels are Japanese (format names like "Word (.docx)" aside).
ENGLISH = re.compile(r"\b(Error|Warning|Info|Copy|Clear|Like|Dislike|Submit|Loading|Settings|Use via API|"
                     r"Built with|Retry|Undo|message|conversation|Drop|Upload|Scroll|tabs|footer)\b", re.IGNORECASE)


@pytest.fixture
def open_page(browser, running_app):  # noqa: ANN001, ANN201
    """A fresh browser (its own storage) showing the app, at a viewport and in a browser language."""
    contexts = []

    def open_(viewport: dict = DESKTOP, locale: str = "ja-JP"):  # noqa: ANN202
        context = browser.new_context(locale=locale, viewport=viewport, is_mobile=viewport is PHONE,
                                      has_touch=viewport is PHONE)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.outside_requests = []  # type: ignore[attr-defined]
        page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))
                else page.outside_requests.append(r.url))  # type: ignore[attr-defined]
        page.goto(running_app.url)
        page.wait_for_selector("#chat-input textarea")
        page.wait_for_selector("#viewer-label :text('ログイン')")
        return page

    yield open_
    for context in contexts:
        context.close()


def session_id(page) -> str:  # noqa: ANN001
    """The consultation's session id, from the (closed by default) セッション section."""
    field = page.locator("#chat-session input, #chat-session textarea")
    if not field.count() or not field.is_visible():
        page.get_by_role("button", name="セッション").click()
        field.wait_for()
    return field.input_value()


def bot_rows(page):  # noqa: ANN001, ANN201
    return page.locator("#chatbot .message-row.bot-row")


def wait_for_answers(page, count: int) -> None:  # noqa: ANN001
    """Wait until `count` answers are on screen and the last one is complete (no progress line left)."""
    page.wait_for_function(
        """([count]) => {
            const rows = document.querySelectorAll('#chatbot .message-row.bot-row');
            const last = rows[rows.length - 1];
            // Without an LLM the answer replaces its progress line in one step.
            return rows.length === count && last && last.innerText.trim() && !last.innerText.includes('⏳');
        }""",
        arg=[count],
    )


def ask(page, text: str, answers: int) -> None:  # noqa: ANN001
    box = page.locator("#chat-input textarea")
    box.fill(text)
    box.press("Enter")
    wait_for_answers(page, answers)
    page.wait_for_timeout(300)  # the sources panel and the list arrive with the answer


def assert_offline(page, running_app) -> None:  # noqa: ANN001
    assert page.outside_requests == [], page.outside_requests
    assert running_app.outside_connections() == []


def test_enter_sends_and_shift_enter_starts_a_new_line(open_page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    page = open_page()
    box = page.locator("#chat-input textarea")
    assert "Enter で送信" in box.get_attribute("placeholder") and "Shift+Enter で改行" in box.get_attribute("placeholder")
    box.click()
    box.type("子どもの医療費助成で住民税の情報を照会したいです。")
    page.keyboard.press("Shift+Enter")
    box.type("届出は必要ですか？")
    assert box.input_value() == "子どもの医療費助成で住民税の情報を照会したいです。\n届出は必要ですか？"
    assert page.locator("#chatbot .message-row.user-row").count() == 0, "Shift+Enter did not send"
    # Enter that confirms an input-method conversion sends nothing.
    box.dispatch_event("keydown", {"key": "Enter", "keyCode": 229, "isComposing": True})
    page.wait_for_timeout(500)
    assert page.locator("#chatbot .message-row.user-row").count() == 0
    page.keyboard.press("Enter")
    wait_for_answers(page, 1)
    sent = page.locator("#chatbot .message-row.user-row").first.inner_text()
    assert "照会したいです。" in sent and "届出は必要ですか" in sent
    assert box.input_value() == ""
    page.screenshot(path=str(artifacts / "chat-enter.png"))
    assert_offline(page, running_app)


def test_a_new_answer_is_shown_from_its_start_with_progress_while_it_is_made(
    open_page, running_app, artifacts: Path  # noqa: ANN001
) -> None:
    page = open_page()
    page.evaluate("""() => {
        window.progressSeen = false;
        new MutationObserver(() => {
            if (document.querySelector('#chatbot')?.innerText.includes('⏳')) window.progressSeen = true;
        }).observe(document.querySelector('#chatbot'), {childList: true, subtree: true, characterData: true});
    }""")
    ask(page, FIRST, 1)
    ask(page, LONG, 2)
    assert page.evaluate("window.progressSeen"), "a progress line is shown while the answer is made"
    position = page.evaluate("""() => {
        const question = [...document.querySelectorAll('#chatbot .message-row.user-row')].pop();
        const answer = [...document.querySelectorAll('#chatbot .message-row.bot-row')].pop();
        const box = answer.closest('.bubble-wrap');
        const q = question.getBoundingClientRect(), a = answer.getBoundingClientRect(), b = box.getBoundingClientRect();
        return {questionTop: q.top, answerTop: a.top, answerBottom: a.bottom, boxTop: b.top, boxBottom: b.bottom,
                overflow: box.scrollHeight > box.clientHeight};
    }""")
    assert position["overflow"], "two answers do not fit: the view had to choose what to show"
    assert position["boxTop"] - 1 <= position["questionTop"] <= position["boxTop"] + 40, position
    assert position["answerTop"] < position["boxBottom"] - 40, "the start of the answer is in view"
    assert position["answerBottom"] > position["boxBottom"], "the end (the source list) is below, not in view"
    page.screenshot(path=str(artifacts / "chat-answer-start.png"))
    assert_offline(page, running_app)


def test_consultations_are_listed_resumed_and_cleared(open_page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    page = open_page()
    ask(page, SECOND, 1)
    first_session = session_id(page)
    listed = page.locator("#chat-conversations label")
    listed.first.wait_for()
    assert listed.count() == 1 and listed.first.inner_text().startswith("市営住宅の管理事務で連携を始めたい")
    page.click("#chat-new")
    page.wait_for_function(f"document.querySelector('#chat-session input, #chat-session textarea')?.value !== {first_session!r}")
    assert bot_rows(page).count() == 0
    ask(page, FIRST, 1)
    second_session = session_id(page)
    page.wait_for_function("document.querySelectorAll('#chat-conversations label').length === 2")
    page.reload()  # the list is kept for this browser
    page.wait_for_selector("#chat-conversations label")
    page.wait_for_function("document.querySelectorAll('#chat-conversations label').length === 2")
    page.locator("#chat-conversations label", has_text="市営住宅の管理事務").click()
    wait_for_answers(page, 1)
    assert session_id(page) == first_session and "市営住宅" in page.inner_text("#chatbot")
    page.screenshot(path=str(artifacts / "chat-conversations.png"))
    ask(page, FOLLOW_UP, 2)  # the resumed consultation keeps its context: the affair of case (7)
    assert "受付期間" in bot_rows(page).last.inner_text()
    # The trash icon clears the screen and starts a new consultation: the follow-up has no affair to refer to.
    page.locator("#chatbot button[aria-label='画面を消去して新しい相談を始める']").click()
    page.wait_for_function(
        f"![{first_session!r}, {second_session!r}].includes(document.querySelector('#chat-session input, #chat-session textarea')?.value)"
    )
    assert bot_rows(page).count() == 0
    ask(page, FOLLOW_UP, 1)
    assert "事例(7)" not in page.inner_text("#chat-sources")
    assert "市営住宅" not in bot_rows(page).last.inner_text()
    assert_offline(page, running_app)


def test_a_marker_opens_that_answers_source(open_page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    page = open_page()
    ask(page, FIRST, 1)
    ask(page, SECOND, 2)
    assert "2 番目の回答の出典" in page.inner_text("#chat-sources")
    marker = bot_rows(page).first.locator("a[href^='#cite-1-']").first
    number = re.search(r"#cite-1-(\d+)", marker.get_attribute("href")).group(1)
    marker.click()
    page.wait_for_selector("#chat-sources :text('1 番目の回答の出典')")
    card = page.locator("#chat-sources .citation.active").first
    assert card.inner_text().startswith(f"[{number}]")
    assert card.locator(".source-text mark").is_visible(), "the quote is highlighted in the opened passage"
    assert "小児慢性特定疾病" in page.inner_text("#chat-sources"), "the panel follows the first answer"
    page.screenshot(path=str(artifacts / "chat-marker.png"))
    assert_offline(page, running_app)


def test_feedback_is_given_on_the_message_with_a_comment(open_page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    from assistant.dialogue.store import DialogueStore

    page = open_page()
    ask(page, FIRST, 1)
    ask(page, SECOND, 2)
    session = session_id(page)
    page.locator("#chatbot .message-row.bot-row").first.locator("xpath=following-sibling::*[1]") \
        .locator("button[aria-label='役に立たなかった']").click()
    page.wait_for_selector("#chat-feedback-status :text('1 番目の回答に 👎 を記録しました')")
    assert page.locator("#chat-feedback").first.is_visible(), "the comment box is open, not in a closed section"
    page.fill("#chat-feedback-comment textarea", "出典の時点が古い")
    page.click("#chat-feedback-send")
    page.wait_for_selector("#chat-feedback-status :text('コメントも記録しました')")
    page.screenshot(path=str(artifacts / "chat-feedback.png"))
    stored = DialogueStore(f"sqlite:///{running_app.home / 'assistant.db'}").feedback(session)
    assert [(f.turn, f.rating, f.comment) for f in stored] == [(1, -1, ""), (1, -1, "出典の時点が古い")]
    assert_offline(page, running_app)


def test_an_empty_send_only_gives_a_hint(open_page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    page = open_page()
    ask(page, FIRST, 1)
    before = page.inner_text("#chatbot")
    page.fill("#chat-input textarea", "   ")
    page.click("#chat-send")
    page.wait_for_selector(".toast-body :text('質問を入力してから送信してください')")
    page.wait_for_timeout(500)
    assert page.inner_text("#chatbot") == before
    assert "エラー" not in page.inner_text("body"), "no error badges or toasts"
    page.screenshot(path=str(artifacts / "chat-empty-send.png"))


def test_an_english_browser_sees_japanese(open_page, running_app, artifacts: Path) -> None:  # noqa: ANN001
    page = open_page(locale="en-US")
    ask(page, "担当の山田です。" + FIRST, 1)
    toast = page.locator(".toast-body", has_text="個人情報")
    toast.first.wait_for()
    note = toast.first.inner_text()
    assert "氏名" in note and "name" not in note, note
    assert page.evaluate("document.documentElement.lang") == "ja"
    seen = page.evaluate("""() => [...document.querySelectorAll('[aria-label], [title], [placeholder]')]
        .map(e => [e.getAttribute('aria-label'), e.getAttribute('title'), e.getAttribute('placeholder')])
        .flat().filter(Boolean)""")
    seen += [page.inner_text(".toast-wrap")] if page.locator(".toast-wrap").count() else []
    seen += [page.inner_text("footer")] if page.locator("footer").count() else []
    english = sorted({text for text in seen if ENGLISH.search(text)})
    assert english == [], english
    page.screenshot(path=str(artifacts / "chat-english-browser.png"))
    assert_offline(page, running_app)


def test_on_a_phone_the_page_scrolls_once_and_sources_are_reached_from_the_answer(
    open_page, running_app, artifacts: Path  # noqa: ANN001
) -> None:
    page = open_page(PHONE)
    ask(page, FIRST, 1)
    ask(page, SECOND, 2)
    inner = page.evaluate("""() => [...document.querySelectorAll('#chatbot, #chatbot .bubble-wrap')]
        .map(e => e.scrollHeight - e.clientHeight)""")
    assert max(inner) <= 2, f"the answer sits in a scroll box inside the page: {inner}"
    assert page.evaluate("document.documentElement.scrollHeight > window.innerHeight")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "no sideways scrolling"
    page.screenshot(path=str(artifacts / "chat-phone.png"), full_page=True)
    bot_rows(page).first.locator("a[href^='#cite-1-']").first.click()
    card = page.locator("#chat-sources .citation.active").first
    card.wait_for()
    page.wait_for_function("""() => {
        const r = document.querySelector('#chat-sources .citation.active').getBoundingClientRect();
        return r.top >= 0 && r.top < window.innerHeight;
    }""")
    page.screenshot(path=str(artifacts / "chat-phone-source.png"))
    assert_offline(page, running_app)
