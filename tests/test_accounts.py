"""Login accounts: salted scrypt hashes, roles, `account_` tables, locks after failed logins, the command line."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
from sqlalchemy import inspect

from assistant import accounts as accounts_module
from assistant.accounts import (
    ROLE_ADMIN,
    ROLE_STAFF,
    UNKNOWN_NAME,
    AccountError,
    AccountStore,
    LoginLocked,
    LoginPolicy,
    check_password,
    hash_password,
    metadata,
)
from assistant.audit import LOCKED_REFUSED, LOCKOUT, LOGIN, LOGIN_FAILURE, UNLOCK, AuditLog
from assistant.config import ConfigError, load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
POLICY = LoginPolicy(max_failures=3, max_failures_per_address=5, window=dt.timedelta(minutes=10),
                     lock_for=dt.timedelta(minutes=15))


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2025, 4, 1, 9, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'accounts.db'}"


@pytest.fixture
def store(url: str) -> AccountStore:
    return AccountStore(url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guarded(url: str, clock: Clock) -> AccountStore:
    store = AccountStore(url, policy=POLICY, audit=AuditLog(url), clock=clock)
    store.add("tanaka", ROLE_STAFF, "password-123")
    store.add("sato", ROLE_STAFF, "password-456")
    return store


def test_hash_is_salted_scrypt_and_checks() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second
    assert check_password("correct horse", first) and check_password("correct horse", second)
    assert not check_password("wrong horse", first)
    assert not check_password("correct horse", "not-a-hash")


def test_add_verify_role_and_table_prefix(store: AccountStore) -> None:
    store.add("tanaka", ROLE_STAFF, "password-123")
    assert store.verify("tanaka", "password-123")
    assert not store.verify("tanaka", "password-124")
    assert not store.verify("nobody", "password-123")
    assert store.role_of("tanaka") == ROLE_STAFF and store.role_of("nobody") is None
    tables = set(inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= tables and all(name.startswith("account_") for name in metadata.tables)
    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM account_users").scalar_one()
    assert "password-123" not in stored


def test_rejects_bad_input(store: AccountStore) -> None:
    store.add("sato", ROLE_ADMIN, "password-123")
    with pytest.raises(AccountError, match="既に登録"):
        store.add("sato", ROLE_ADMIN, "password-456")
    with pytest.raises(AccountError, match="役割"):
        store.add("suzuki", "admin", "password-123")
    with pytest.raises(AccountError, match="8 文字以上"):
        store.add("suzuki", ROLE_STAFF, "short")
    with pytest.raises(AccountError, match="空白"):
        store.add("a b", ROLE_STAFF, "password-123")


def test_change_password_and_remove(store: AccountStore) -> None:
    store.add("ito", ROLE_STAFF, "password-123")
    store.set_password("ito", "password-999")
    assert store.verify("ito", "password-999") and not store.verify("ito", "password-123")
    assert store.remove("ito") and not store.remove("ito")
    assert store.accounts() == []


def test_command_line_add_reads_password_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("password-123\n"))
    assert accounts_module.main(["add", "kato", ROLE_ADMIN]) == 0
    assert "kato（管理者）を追加しました" in capsys.readouterr().out
    assert accounts_module.main(["list"]) == 0
    assert "kato\t管理者" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("password-123\n"))
    assert accounts_module.main(["add", "kato", ROLE_ADMIN]) == 1
    assert "既に登録" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["assistant.accounts", "assistant.ui.accounts"])
def test_module_runs_as_a_script(tmp_path: Path, module: str) -> None:
    env = {"ASSISTANT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", module, "add", "yamada", ROLE_STAFF],
        input="password-123\n", capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert AccountStore(f"sqlite:///{tmp_path / 'home' / 'assistant.db'}").verify("yamada", "password-123")


# -- locks after failed logins -----------------------------------------------------------------------
def test_an_account_locks_after_repeated_failures_even_for_the_right_password(guarded: AccountStore) -> None:
    assert all(not guarded.login("tanaka", "wrong-password", "192.0.2.1") for _ in range(POLICY.max_failures))
    with pytest.raises(LoginLocked, match="ロックされています"):
        guarded.login("tanaka", "password-123", "192.0.2.1")
    with pytest.raises(LoginLocked):
        guarded.login("tanaka", "password-123", "198.51.100.7")  # the account is locked, wherever the user is
    assert guarded.login("sato", "password-456", "198.51.100.7"), "another account is not affected"


def test_failures_outside_the_window_do_not_count_and_a_success_resets(guarded: AccountStore, clock: Clock) -> None:
    for _ in range(POLICY.max_failures - 1):
        assert not guarded.login("tanaka", "wrong-password")
    clock.advance(minutes=11)
    assert not guarded.login("tanaka", "wrong-password")
    assert guarded.login("tanaka", "password-123"), "older failures fell out of the window"
    for _ in range(POLICY.max_failures - 1):
        assert not guarded.login("tanaka", "wrong-password")
    assert guarded.login("tanaka", "password-123"), "a successful login starts the count again"


def test_a_lock_expires_or_is_lifted_by_an_administrator(guarded: AccountStore, clock: Clock) -> None:
    for _ in range(POLICY.max_failures):
        guarded.login("tanaka", "wrong-password")
    clock.advance(minutes=14)
    with pytest.raises(LoginLocked, match="以降に再度お試し"):
        guarded.login("tanaka", "password-123")
    clock.advance(minutes=2)
    assert guarded.login("tanaka", "password-123")
    for _ in range(POLICY.max_failures):
        guarded.login("tanaka", "wrong-password")
    assert [lock.key for lock in guarded.locks()] == ["tanaka"]
    assert guarded.unlock("tanaka") and guarded.locks() == []
    assert guarded.login("tanaka", "password-123")


def test_a_lock_until_unlocked(url: str, clock: Clock) -> None:
    store = AccountStore(url, policy=LoginPolicy(max_failures=2, lock_for=None), clock=clock)
    store.add("ito", ROLE_STAFF, "password-123")
    store.login("ito", "x"), store.login("ito", "y")
    clock.advance(days=30)
    with pytest.raises(LoginLocked, match="管理者にロックの解除を依頼"):
        store.login("ito", "password-123")


def test_one_address_trying_many_names_is_locked(guarded: AccountStore) -> None:
    for number in range(POLICY.max_failures_per_address):
        guarded.login(f"guess{number}", "wrong-password", "203.0.113.9")
    with pytest.raises(LoginLocked, match="アドレス"):
        guarded.login("sato", "password-456", "203.0.113.9")
    assert guarded.login("sato", "password-456", "203.0.113.10")
    assert guarded.unlock(address="203.0.113.9")
    assert guarded.login("sato", "password-456", "203.0.113.9")


def test_trying_a_locked_account_again_and_again_locks_the_address(guarded: AccountStore) -> None:
    for _ in range(POLICY.max_failures_per_address):
        with pytest.raises(LoginLocked) if guarded.active_lock("tanaka") else nullcontext():
            guarded.login("tanaka", "wrong-password", "203.0.113.9")
    with pytest.raises(LoginLocked, match="アドレス"):
        guarded.login("sato", "password-456", "203.0.113.9")


def test_locks_are_shared_through_the_database(guarded: AccountStore, url: str, clock: Clock) -> None:
    other_worker = AccountStore(url, policy=POLICY, clock=clock)
    for _ in range(POLICY.max_failures):
        other_worker.login("tanaka", "wrong-password")
    with pytest.raises(LoginLocked):
        guarded.login("tanaka", "password-123")


def test_login_events_are_audited_without_passwords_or_unknown_names(guarded: AccountStore, url: str) -> None:
    guarded.login("tanaka", "password-123", "192.0.2.1")
    guarded.login("my-secret-password", "tanaka", "192.0.2.1")  # name and password typed the wrong way round
    for _ in range(POLICY.max_failures):
        guarded.login("tanaka", "wrong-password", "192.0.2.1")
    guarded.unlock("tanaka")
    for _ in range(POLICY.max_failures + 1):
        with pytest.raises(LoginLocked) if guarded.active_lock("typed-secret") else nullcontext():
            guarded.login("typed-secret", "tanaka", "192.0.2.2")
    events = AuditLog(url).events()
    actions = [e.action for e in events]
    assert actions[0] == LOGIN and actions.count(LOGIN_FAILURE) == 2 * POLICY.max_failures + 1
    assert LOCKOUT in actions and UNLOCK in actions and actions[-1] == LOCKED_REFUSED
    failure = events[1]
    assert failure.user == UNKNOWN_NAME and failure.address == "192.0.2.1"
    dump = repr(events)
    for secret in ("my-secret-password", "wrong-password", "typed-secret"):
        assert secret not in dump


def test_policy_comes_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LOGIN_MAX_FAILURES", "7")
    monkeypatch.setenv("ASSISTANT_LOGIN_LOCK_MINUTES", "0")
    policy = LoginPolicy.from_settings(load_settings(home=tmp_path))
    assert policy.max_failures == 7 and policy.lock_for is None
    monkeypatch.setenv("ASSISTANT_LOGIN_MAX_FAILURES", "0")
    with pytest.raises(ConfigError, match="1 以上"):
        LoginPolicy.from_settings(load_settings(home=tmp_path))


def test_command_line_unlock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    home = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    settings = load_settings()
    settings.ensure_dirs()
    store = AccountStore.for_settings(settings)
    store.add("kato", ROLE_ADMIN, "password-123")
    for _ in range(settings.login_max_failures):
        store.login("kato", "wrong-password")
    assert accounts_module.main(["list"]) == 0
    assert "ロック中\tユーザー kato" in capsys.readouterr().out
    assert accounts_module.main(["unlock", "kato"]) == 0
    assert "kato のロックを解除しました" in capsys.readouterr().out
    assert store.login("kato", "password-123")
    assert accounts_module.main(["unlock"]) == 1
    assert "どちらか一つ" in capsys.readouterr().err


def test_municipality_is_kept_per_account_and_cleared(store: AccountStore) -> None:
    store.add("nakano", ROLE_STAFF, "password-123", municipality="さくら市")
    store.add("ueda", ROLE_STAFF, "password-123")
    assert store.municipality_of("nakano") == "さくら市" and store.municipality_of("ueda") is None
    store.set_municipality("ueda", " もみじ町 ")
    assert {a.name: a.municipality for a in store.accounts()} == {"nakano": "さくら市", "ueda": "もみじ町"}
    store.set_municipality("nakano", "")
    assert store.municipality_of("nakano") is None
    with pytest.raises(AccountError, match="登録されていません"):
        store.set_municipality("nobody", "さくら市")
    with pytest.raises(AccountError, match="団体名"):
        store.set_municipality("ueda", "市" * 65)
    assert store.remove("ueda") and store.municipality_of("ueda") is None


def test_a_database_made_before_municipalities_needs_no_migration(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as connection:  # the accounts table as earlier versions created it
        connection.exec_driver_sql(
            "CREATE TABLE account_users (name VARCHAR(64) PRIMARY KEY, role VARCHAR(32) NOT NULL, "
            "password_hash VARCHAR(256) NOT NULL, created_at DATETIME NOT NULL)"
        )
        connection.exec_driver_sql(
            "INSERT INTO account_users VALUES (?, ?, ?, ?)", ("old", ROLE_STAFF, hash_password("password-123"), "2025-01-01 00:00:00")
        )
    engine.dispose()
    store = AccountStore(url)
    assert store.verify("old", "password-123") and store.municipality_of("old") is None
    store.set_municipality("old", "さくら市")
    assert store.accounts()[0].municipality == "さくら市"


def test_command_line_sets_the_municipality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("password-123\n"))
    assert accounts_module.main(["add", "kudo", ROLE_STAFF, "--municipality", "さくら市"]) == 0
    assert "kudo（自治体職員、さくら市）を追加しました" in capsys.readouterr().out
    assert accounts_module.main(["municipality", "kudo", "もみじ町"]) == 0
    assert accounts_module.main(["list"]) == 0
    assert "kudo\t自治体職員\tもみじ町\t" in capsys.readouterr().out
