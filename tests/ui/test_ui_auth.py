"""With login on: every page needs a login, the role decides who drafts replies and administers documents,
a consultation belongs to its user, and repeated wrong passwords lock the account and the address."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ui_support import PROJECT_ROOT, RunningApp, app_environment, copy_index, start_app, stop_app
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError

pytestmark = pytest.mark.slow

USERS = {
    "tanaka": ("自治体職員", "staff-pass-1"),
    "desk": ("ヘルプデスク", "desk-pass-1"),
    "admin": ("管理者", "admin-pass-1"),
    "victim": ("自治体職員", "victim-pass-1"),
}
QUESTION = "ひとり親家庭の医療費助成で地方税情報を照会できますか？"
KAEDE_PASSWORD = "kaede-pass-1"


def accounts_command(home: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "assistant.accounts", *args],
        input=f"{password}\n", capture_output=True, text=True, cwd=PROJECT_ROOT,
        env=app_environment(home), timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def add_user(home: Path, name: str, role: str, password: str) -> None:
    accounts_command(home, "add", name, role, password=password)


@pytest.fixture(scope="module")
def auth_app(tmp_path_factory: pytest.TempPathFactory, app_home: Path, running_app: RunningApp) -> Iterator[RunningApp]:
    home = tmp_path_factory.mktemp("ui-auth-home")
    copy_index(app_home, home)
    for name, (role, password) in USERS.items():
        add_user(home, name, role, password)
    accounts_command(home, "add", "kaede", "自治体職員", "--municipality", "かえで村", password=KAEDE_PASSWORD)
    app = start_app(home, tmp_path_factory.mktemp("ui-auth-logs") / "app.log", ASSISTANT_AUTH_ENABLED="true")
    yield app
    stop_app(app)


def login(app: RunningApp, name: str) -> Client:
    return Client(app.url, auth=(name, USERS[name][1]), verbose=False)


def test_the_app_asks_for_a_login(auth_app: RunningApp) -> None:
    with urllib.request.urlopen(auth_app.url, timeout=10) as response:  # noqa: S310 - loopback
        page = response.read().decode("utf-8")
    assert '"auth_required":true' in page.replace(" ", "")
    with pytest.raises(AuthenticationError):
        Client(auth_app.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(auth_app.url, auth=("admin", "wrong-password"), verbose=False)


def test_staff_can_consult_but_not_draft_or_administer(auth_app: RunningApp) -> None:
    client = login(auth_app, "tanaka")
    label = client.predict(api_name="/session_start")[0]
    assert "tanaka（自治体職員）" in label and "ログアウト" in label
    answer = client.predict("auth-staff", QUESTION, [], api_name="/chat")
    assert answer[5]["citations"]
    with pytest.raises(AppError, match="ヘルプデスクまたは管理者"):
        client.predict(QUESTION, api_name="/reply_draft")
    with pytest.raises(AppError, match="管理者の権限"):
        client.predict(api_name="/admin_status")
    with pytest.raises(AppError, match="管理者の権限"):
        client.predict(api_name="/admin_rebuild")


def test_help_desk_drafts_replies_but_does_not_administer(auth_app: RunningApp) -> None:
    client = login(auth_app, "desk")
    draft = client.predict(QUESTION, api_name="/reply_draft")[0]
    assert draft.strip()
    with pytest.raises(AppError, match="管理者の権限"):
        client.predict(api_name="/admin_open")


def test_administrator_uploads_documents(auth_app: RunningApp, tmp_path: Path) -> None:
    client = login(auth_app, "admin")
    assert "admin（管理者）" in client.predict(api_name="/session_start")[0]
    document = tmp_path / "管理者が登録した資料.txt"
    document.write_text("かえで手当は、かえで村が独自に支給する手当です。", encoding="utf-8")
    message, results, status, documents, _ = client.predict(
        [handle_file(str(document))], "", "other", "", "municipality", "かえで村", "要確認", True, False,
        api_name="/admin_ingest",
    )
    assert results["data"][0][1] == "追加" and "要確認" in results["data"][0][3]
    assert "索引を差分で更新しました" in message and "最新" in status
    assert document.stem in [row[0] for row in documents["data"]]


def test_a_municipalitys_own_document_answers_only_its_own_officers(auth_app: RunningApp) -> None:
    """Runs after the administrator registered かえで村's document as 団体の資料 of かえで村."""
    question = "かえで手当について教えてください。かえで村が独自に支給する手当ですか？"

    def cited(client: Client, session: str) -> set[str]:
        result = client.predict(session, question, [], api_name="/chat")[-1]
        return {c["source_id"] for c in result["citations"] if c["source_id"].startswith("doc-")}

    own = Client(auth_app.url, auth=("kaede", KAEDE_PASSWORD), verbose=False)
    assert "kaede（自治体職員、かえで村）" in own.predict(api_name="/session_start")[0]
    assert cited(own, "auth-scope-own"), "かえで村's officer is answered from かえで村's document"
    assert not cited(login(auth_app, "tanaka"), "auth-scope-other"), "another officer is not"
    assert cited(login(auth_app, "desk"), "auth-scope-desk"), "the help desk sees every municipality's material"


@pytest.mark.browser
@pytest.mark.parametrize(
    ("name", "visible", "hidden"),
    [("tanaka", ["相談チャット", "事前チェックリスト", "事例一覧"], ["回答案作成", "資料管理"]),
     ("admin", ["相談チャット", "回答案作成", "資料管理"], [])],
)
def test_login_page_and_tabs_by_role(
    browser, auth_app: RunningApp, artifacts: Path, name: str, visible: list[str], hidden: list[str]  # noqa: ANN001
) -> None:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(auth_app.url)
        page.get_by_role("button", name="ログイン").wait_for()
        if name == "tanaka":
            page.screenshot(path=str(artifacts / "login.png"))
        page.get_by_label("ユーザー名").fill(name)
        page.get_by_label("パスワード").fill(USERS[name][1])
        page.get_by_role("button", name="ログイン").click()
        page.wait_for_selector(f"#viewer-label :text('{name}（{USERS[name][0]}）')", timeout=30_000)
        for tab in visible:
            assert page.get_by_role("tab", name=tab).is_visible()
        for tab in hidden:
            assert page.get_by_role("tab", name=tab).count() == 0 or not page.get_by_role("tab", name=tab).is_visible()
        page.screenshot(path=str(artifacts / f"tabs-{name}.png"))
    finally:
        context.close()


def test_a_consultation_belongs_to_the_user_who_started_it(auth_app: RunningApp) -> None:
    staff, others = login(auth_app, "tanaka"), [login(auth_app, "desk"), login(auth_app, "admin")]
    chat = "auth-own-chat"
    staff.predict(chat, QUESTION, [], api_name="/chat")
    for other in others:
        for args, endpoint in (((chat,), "/chat_history"), ((chat, "続きを教えてください", []), "/chat"),
                               ((chat, 1, "👎 役に立たなかった", ""), "/chat_feedback")):
            with pytest.raises(AppError, match="別の利用者の相談です"):
                other.predict(*args, api_name=endpoint)
    history = staff.predict(chat, api_name="/chat_history")
    assert len(history[0]["value"]) == 2 and history[3]["turn"] == 1, "the refused requests left nothing in the owner's session"
    sheet = "auth-own-check"
    staff.predict(sheet, api_name="/checklist_start")
    staff.predict(sheet, "子ども医療費助成事務", api_name="/checklist_answer")
    for other in others:
        for args, endpoint in (((sheet,), "/checklist_start"), ((sheet, "はい"), "/checklist_answer"),
                               ((sheet,), "/checklist_skip"), ((sheet, "Markdown (.md)"), "/checklist_export")):
            with pytest.raises(AppError, match="別の利用者の相談です"):
                other.predict(*args, api_name=endpoint)
    assert staff.predict(sheet, api_name="/checklist_start")[-1]["progress"]["done"] == 1
    from assistant.audit import ACCESS_DENIED, CHAT, AuditLog

    audit = AuditLog(f"sqlite:///{auth_app.home / 'assistant.db'}")
    assert {(e.user, e.session_id) for e in audit.events(action=ACCESS_DENIED)} >= {("desk", chat), ("admin", sheet)}
    assert ("tanaka", "自治体職員", f"{chat}#1") in {(e.user, e.role, e.answer_id) for e in audit.events(action=CHAT)}


def post_login(app: RunningApp, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{app.url}login", data={"username": name, "password": password}, timeout=30)


def test_repeated_wrong_passwords_lock_the_account_and_the_address_until_unlocked(auth_app: RunningApp) -> None:
    """Runs last in this module: it locks the loopback address, then lifts the lock."""
    started = time.monotonic()
    assert all(post_login(auth_app, "victim", f"wrong-{n}").status_code == 400 for n in range(100))
    seconds = time.monotonic() - started
    refused = post_login(auth_app, "victim", USERS["victim"][1])
    assert refused.status_code == 400, f"the right password still logs in after 100 failures in {seconds:.1f} s"
    assert "ロックされています" in refused.json()["detail"]
    elsewhere = post_login(auth_app, "tanaka", USERS["tanaka"][1])
    assert elsewhere.status_code == 400 and "アドレス" in elsewhere.json()["detail"], "100 failures from one address"
    accounts_command(auth_app.home, "unlock", "--address", "127.0.0.1")
    assert post_login(auth_app, "tanaka", USERS["tanaka"][1]).status_code == 200
    assert post_login(auth_app, "victim", USERS["victim"][1]).status_code == 400, "the account is still locked"
    listed = accounts_command(auth_app.home, "list").stdout
    assert "ロック中\tユーザー victim" in listed
    accounts_command(auth_app.home, "unlock", "victim")
    assert post_login(auth_app, "victim", USERS["victim"][1]).status_code == 200
    from assistant.audit import LOCKOUT, LOGIN_FAILURE, UNLOCK, AuditLog

    audit = AuditLog(f"sqlite:///{auth_app.home / 'assistant.db'}")
    lockouts = audit.events(action=LOCKOUT)
    assert {e.detail.split(":")[0] for e in lockouts} >= {"ユーザー victim", "アドレス 127.0.0.1"}
    assert len(audit.events(action=LOGIN_FAILURE)) >= 5 and len(audit.events(action=UNLOCK)) == 2
