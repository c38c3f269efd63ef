"""Fixtures for the web app: one running `python app.py` per test session, gradio_client, headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, RunningApp, start_app, stop_app


@pytest.fixture(scope="session")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-home")


@pytest.fixture(scope="session")
def running_app(app_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app as a user starts it (login off, localhost), shared by every test of the session."""
    app = start_app(app_home, tmp_path_factory.mktemp("ui-logs") / "app.log")
    yield app
    stop_app(app)


@pytest.fixture(scope="session")
def client(running_app: RunningApp):  # noqa: ANN201 - gradio_client imported lazily
    from gradio_client import Client

    return Client(running_app.url, verbose=False)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} がありません（scripts/install-browser.sh で Debian の chromium を入れてください）")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser):  # noqa: ANN001, ANN201
    """Open Japanese browser tabs that record every request leaving 127.0.0.1 (in ``tab.outside_requests``)."""
    contexts = []

    def open_tab():  # noqa: ANN202
        context = browser.new_context(locale="ja-JP", viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        contexts.append(context)
        tab = context.new_page()
        tab.outside_requests = []  # type: ignore[attr-defined]

        def record(request) -> None:  # noqa: ANN001
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
                tab.outside_requests.append(request.url)  # type: ignore[attr-defined]

        tab.on("request", record)
        tab.set_default_timeout(30_000)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page, running_app: RunningApp):  # noqa: ANN001, ANN201
    """A Japanese browser tab for the shared app that records every request leaving 127.0.0.1."""
    return new_page()
