"""知識の管理 in the running app: an administrator corrects, reviews the before / after, reverts, exports and imports
an official table with a preview first; a 自治体職員 sees facts and their confidence but cannot change anything."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from ui_support import PROJECT_ROOT, RunningApp, app_environment, copy_index, start_app, stop_app

pytestmark = pytest.mark.slow

USERS = {"tanaka": ("自治体職員", "staff-pass-1"), "admin": ("管理者", "admin-pass-1")}
PATH = "cases.5.analogous_statutory_affair"
FILTERS = ["すべて", True, ""]


def add_user(home: Path, name: str) -> None:
    role, password = USERS[name]
    done = subprocess.run([sys.executable, "-m", "assistant.accounts", "add", name, role], input=f"{password}\n",
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=app_environment(home), timeout=60)
    assert done.returncode == 0, done.stderr


TABLE_ROWS = [["難病患者の医療費助成に関する事務又はこれらに類するその他の事務", "都道府県知事", "市町村長"],
              ["心身障害者扶養共済制度の掛金減免に関する事務", "市町村長", "都道府県知事"]]


def write_table(path: Path, rows: list[list[str]] = TABLE_ROWS) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["事務の名称", "情報照会者", "情報提供者"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture(scope="module")
def auth_app(tmp_path_factory: pytest.TempPathFactory, app_home: Path, running_app: RunningApp) -> Iterator[RunningApp]:
    home = tmp_path_factory.mktemp("ui-knowledge-auth-home")
    copy_index(app_home, home)
    for name in USERS:
        add_user(home, name)
    app = start_app(home, tmp_path_factory.mktemp("ui-knowledge-auth-logs") / "app.log", ASSISTANT_AUTH_ENABLED="true")
    yield app
    stop_app(app)


def login(app: RunningApp, name: str) -> Client:
    return Client(app.url, auth=(name, USERS[name][1]), verbose=False)


def test_staff_cannot_change_knowledge_but_an_administrator_can(auth_app: RunningApp) -> None:
    staff = login(auth_app, "tanaka")
    form = [PATH, "", False, "確認済み", "事例一覧.pdf", "p.3", "2026-04-01", "公式の一覧で確認", False, *FILTERS]
    for args, endpoint in ((form, "/knowledge_set"), (("1", "戻す", False, PATH, *FILTERS), "/knowledge_revert"),
                           ((FILTERS), "/knowledge_facts"), ((PATH,), "/knowledge_show"), ((), "/knowledge_export")):
        with pytest.raises(AppError, match="管理者の権限"):
            staff.predict(*args, api_name=endpoint)
    # The staff member still sees the facts and their confidence in the case registry.
    table = staff.predict("予防接種", "すべて", api_name="/cases_search")
    assert any("要確認" in row for row in table["data"])
    admin = login(auth_app, "admin")
    message, diff, detail, facts, history = admin.predict(*form, api_name="/knowledge_set")
    assert "補正 #1 を記録しました" in message and "確認済み" in diff and "事例一覧.pdf p.3" in detail
    assert history["data"][-1][2] == "admin" and history["data"][-1][4] == PATH
    audit = subprocess.run([sys.executable, "-m", "assistant.audit", "export", "--out", str(auth_app.home / "audit.csv")],
                           capture_output=True, text=True, cwd=PROJECT_ROOT, env=app_environment(auth_app.home), timeout=60)
    assert audit.returncode == 0, audit.stderr
    rows = (auth_app.home / "audit.csv").read_text(encoding="utf-8-sig")
    assert "アクセス拒否" in rows and "tanaka" in rows and "知識の管理: 補正" in rows
    assert "知識ベースの変更" in rows and "admin" in rows


@pytest.fixture(scope="module")
def knowledge_app(tmp_path_factory: pytest.TempPathFactory, app_home: Path, running_app: RunningApp) -> Iterator[RunningApp]:
    """An app of its own (login off, localhost = administrator), so that its corrections touch no other test."""
    home = tmp_path_factory.mktemp("ui-knowledge-home")
    copy_index(app_home, home)
    app = start_app(home, tmp_path_factory.mktemp("ui-knowledge-logs") / "app.log")
    yield app
    stop_app(app)


@pytest.mark.browser
def test_the_knowledge_page_corrects_reviews_reverts_exports_and_imports(
    new_page, knowledge_app: RunningApp, artifacts: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    page = new_page()
    page.goto(knowledge_app.url)
    page.wait_for_selector("#viewer-label :text('ログイン')")
    page.get_by_role("tab", name="知識の管理").click()
    facts = page.locator("#knowledge-facts")
    facts.get_by_text("cases.1.case_number").locator("visible=true").first.wait_for()  # the work list: still 要確認
    assert "要確認" in facts.inner_text() and "確認済み" not in facts.inner_text()
    page.fill("#knowledge-query input, #knowledge-query textarea", "予防接種 準ずる")
    page.press("#knowledge-query input, #knowledge-query textarea", "Enter")
    facts.get_by_text(PATH).locator("visible=true").first.click()
    page.wait_for_selector("#knowledge-detail :text('準ずる法定事務')")
    assert "要確認" in page.inner_text("#knowledge-detail")
    page.locator("#knowledge-confidence").get_by_label("確認済み").check()
    page.fill("#knowledge-source input", "独自利用事務の事例一覧.pdf")
    page.press("#knowledge-source input", "Tab")
    page.fill("#knowledge-page input, #knowledge-page textarea", "p.3")
    page.fill("#knowledge-as-of input, #knowledge-as-of textarea", "2026-04-01")
    page.fill("#knowledge-reason input, #knowledge-reason textarea", "公式の事例一覧で確認")
    page.click("#knowledge-preview")
    page.wait_for_selector("#knowledge-diff .diff-after")
    diff = page.inner_text("#knowledge-diff")
    assert "要確認" in diff and "確認済み" in diff and "2026-04-01" in diff
    page.screenshot(path=str(artifacts / "knowledge-diff.png"), full_page=True)
    page.click("#knowledge-save")
    page.wait_for_selector("#knowledge-message :text('索引を再構築しました')", timeout=120_000)
    assert "補正 #1 を記録しました" in page.inner_text("#knowledge-message")
    page.locator("#knowledge-history").get_by_text("公式の事例一覧で確認").locator("visible=true").first.wait_for()
    assert "確認済み" in page.inner_text("#knowledge-detail")
    page.screenshot(path=str(artifacts / "knowledge-saved.png"), full_page=True)

    # The chat now cites the official list, confirmed.
    page.get_by_role("tab", name="相談チャット").click()
    page.fill("#chat-input textarea", "予防接種の自己負担金を徴収する事務は、どの事例に当たりますか")
    page.click("#chat-send")
    page.wait_for_selector("#chat-sources .citation :text('独自利用事務の事例一覧.pdf p.3')", timeout=60_000)
    page.get_by_role("tab", name="知識の管理").click()

    page.fill("#knowledge-revert-ids input, #knowledge-revert-ids textarea", "1")
    page.fill("#knowledge-revert-reason input, #knowledge-revert-reason textarea", "確認をやり直す")
    page.click("#knowledge-revert")
    page.wait_for_selector("#knowledge-message :text('取り消しました: #1')", timeout=120_000)
    assert "要確認" in page.inner_text("#knowledge-detail") and "確認済み" in page.inner_text("#knowledge-diff")
    page.locator("#knowledge-history").get_by_text("取り消し済み", exact=False).locator("visible=true").first.wait_for()

    page.click("#knowledge-export")
    link = page.locator("#knowledge-export-file a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    exported = tmp_path / "overlay.yaml"
    download.value.save_as(exported)
    assert "format: 1" in exported.read_text(encoding="utf-8")

    page.locator("#knowledge-import-box").get_by_text("公式の事例の表を取り込む").click()
    table = write_table(tmp_path / "難病などの事例表.xlsx")
    page.locator("#knowledge-table input[type='file']").set_input_files(str(table))
    page.wait_for_selector(f"#knowledge-table :text('{table.name}')", timeout=90_000)
    page.fill("#knowledge-table-as-of input, #knowledge-table-as-of textarea", "2026-04-01")
    page.click("#knowledge-import-preview")
    page.wait_for_selector("#knowledge-import-message :text('変更 4 件')")
    assert "情報提供者" in page.inner_text("#knowledge-import-diff")
    page.screenshot(path=str(artifacts / "knowledge-import-preview.png"), full_page=True)
    page.click("#knowledge-import-apply")
    page.wait_for_selector("#knowledge-import-message :text('4 件の補正として取り込みました')", timeout=120_000)
    page.screenshot(path=str(artifacts / "knowledge-import-applied.png"), full_page=True)
    assert page.outside_requests == [] and knowledge_app.outside_connections() == []


def test_an_imported_table_is_visible_in_the_registry_through_the_api(knowledge_app: RunningApp, tmp_path: Path) -> None:
    client = Client(knowledge_app.url, verbose=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("事務の名称,情報提供者\n存在しない事務,市町村長\n", encoding="utf-8")
    message, _ = client.predict(handle_file(str(bad)), "", "2026-04-01", "", api_name="/knowledge_import_preview")
    assert "2行目: 事例を特定できません" in message and "何も変更していません" in message
    table = write_table(tmp_path / "api-table.xlsx", [["不妊治療費用の補助に関する事務", "市町村長", "都道府県知事"]])
    message, diff, _, history = client.predict(handle_file(str(table)), "", "2026-05-01", "", True, *FILTERS,
                                               api_name="/knowledge_import")
    assert "2 件の補正として取り込みました" in message and "索引を再構築しました" in message
    detail, _ = client.predict("cases.32.information_providers", api_name="/knowledge_show")
    assert "api-table.xlsx" in detail and "都道府県知事" in detail
    registry = client.predict("不妊", "すべて", api_name="/cases_search")
    assert registry["data"] and history["data"][-1][4].startswith("cases.32.")


@pytest.mark.browser
def test_staff_see_no_knowledge_editor_in_the_browser(browser, auth_app: RunningApp, artifacts: Path) -> None:  # noqa: ANN001
    for name, shown in (("tanaka", False), ("admin", True)):
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        try:
            page.goto(auth_app.url)
            page.get_by_label("ユーザー名").fill(name)
            page.get_by_label("パスワード").fill(USERS[name][1])
            page.get_by_role("button", name="ログイン").click()
            page.wait_for_selector(f"#viewer-label :text('{name}（{USERS[name][0]}）')", timeout=30_000)
            tab = page.get_by_role("tab", name="知識の管理")
            assert (tab.count() > 0 and tab.is_visible()) is shown
            if not shown:  # the facts and their confidence stay visible in the case registry
                page.get_by_role("tab", name="事例一覧").click()
                page.locator("#cases-table").get_by_text("要確認").locator("visible=true").first.wait_for()
                page.screenshot(path=str(artifacts / "knowledge-staff-view.png"))
        finally:
            context.close()
