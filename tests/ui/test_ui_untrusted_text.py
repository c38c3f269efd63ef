"""Text from uploaded documents is shown as text: no image is fetched and no link is made, in any panel."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_support import PROJECT_ROOT, RunningApp, app_environment, copy_index, start_app, stop_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DOCUMENT = """# かえで村の独自給付

かえで手当は、かえで村が独自に支給する手当です。![x](http://example.invalid/a.png) 詳しくは[link](http://example.invalid/page)を参照。
<img src="http://example.invalid/b.png"> <a href="http://example.invalid/c">ここ</a> <b>太字</b> https://example.invalid/d
"""
QUESTION = "かえで手当 詳しくは link を参照 太字"


@pytest.fixture(scope="module")
def document_app(tmp_path_factory: pytest.TempPathFactory, app_home: Path, running_app: RunningApp) -> Iterator[RunningApp]:
    home = tmp_path_factory.mktemp("ui-untrusted-home")
    copy_index(app_home, home)
    document = tmp_path_factory.mktemp("ui-untrusted-docs") / "かえで村の手当.md"
    document.write_text(DOCUMENT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", str(document), "--kind", "other"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=app_environment(home), timeout=300,
    )
    assert done.returncode == 0, done.stderr
    app = start_app(home, tmp_path_factory.mktemp("ui-untrusted-logs") / "app.log")
    yield app
    stop_app(app)


def test_document_markup_is_not_rendered_in_the_chat_or_the_sources(new_page, document_app: RunningApp) -> None:  # noqa: ANN001
    page = new_page()
    page.goto(document_app.url)
    page.wait_for_selector("#chat-input textarea")
    page.fill("#chat-input textarea", QUESTION)
    page.click("#chat-send")
    page.wait_for_selector("#chat-sources .citation")
    for summary in page.locator("#chat-sources summary").all():
        summary.click()  # open every source text
    page.wait_for_timeout(1500)
    chat_text = page.locator("#chatbot").inner_text()
    assert "![x](http://example.invalid/a.png)" in chat_text, "the document's Markdown is shown as written"
    assert "<img" in chat_text or "<img" in page.locator("#chat-sources").inner_text()
    for panel in ("#chatbot", "#chat-sources"):
        outside = page.eval_on_selector_all(
            f"{panel} a[href*='example.invalid'], {panel} img[src*='example.invalid']", "els => els.map(e => e.outerHTML)"
        )
        assert outside == [], f"{panel} made links or images from the document: {outside}"
    assert page.outside_requests == [], f"the page requested: {page.outside_requests}"
