"""Login accounts: salted scrypt hashes, roles, `account_` tables, the command-line helper."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from assistant.ui import accounts as accounts_module
from assistant.ui.accounts import (
    ROLE_ADMIN,
    ROLE_STAFF,
    AccountError,
    AccountStore,
    check_password,
    hash_password,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    return AccountStore(f"sqlite:///{tmp_path / 'accounts.db'}")


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
    tables = inspect(store.engine).get_table_names()
    assert tables and all(name.startswith("account_") for name in tables)
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


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    env = {"ASSISTANT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "assistant.ui.accounts", "add", "yamada", ROLE_STAFF],
        input="password-123\n", capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert AccountStore(f"sqlite:///{tmp_path / 'home' / 'assistant.db'}").verify("yamada", "password-123")
