"""Optional login accounts for the web app: salted scrypt hashes and three roles.

Accounts live in tables prefixed ``account_`` in the project's database
(``Settings.resolved_database_url``). Create users without the web app:

    echo 'PASSWORD' | python -m assistant.ui.accounts add NAME 管理者
    python -m assistant.ui.accounts list
    python -m assistant.ui.accounts remove NAME
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass

from sqlalchemy import DateTime, String, create_engine, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

ROLE_STAFF = "自治体職員"
ROLE_HELPDESK = "ヘルプデスク"
ROLE_ADMIN = "管理者"
ROLES: tuple[str, ...] = (ROLE_STAFF, ROLE_HELPDESK, ROLE_ADMIN)

# scrypt cost parameters (about 16 MiB and a few tens of milliseconds per check).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
MIN_PASSWORD_CHARS = 8
MAX_NAME_CHARS = 64


class AccountError(ValueError):
    """A user name, role or password is not acceptable; the message is for the user."""


class _Base(DeclarativeBase):
    pass


class _AccountRow(_Base):
    __tablename__ = "account_users"

    name: Mapped[str] = mapped_column(String(MAX_NAME_CHARS), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created_at: str


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return ``scrypt$n$r$p$salt$digest`` (hex) for the password."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise AccountError("ユーザー名が空です")
    if len(name) > MAX_NAME_CHARS:
        raise AccountError(f"ユーザー名は {MAX_NAME_CHARS} 文字以内にしてください")
    if any(not ch.isprintable() or ch.isspace() for ch in name):
        raise AccountError("ユーザー名に空白や制御文字は使えません")
    return name


def _validate_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"役割 {role!r} は使えません（{' / '.join(ROLES)}）")
    return role


def _validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"パスワードは {MIN_PASSWORD_CHARS} 文字以上にしてください")
    return password


class AccountStore:
    """Users and roles in the ``account_`` tables of one database."""

    def __init__(self, database_url: str) -> None:
        self.engine: Engine = create_engine(database_url, future=True)
        _Base.metadata.create_all(self.engine)

    def add(self, name: str, role: str, password: str) -> Account:
        name, role, password = _validate_name(name), _validate_role(role), _validate_password(password)
        with Session(self.engine) as session, session.begin():
            if session.get(_AccountRow, name) is not None:
                raise AccountError(f"ユーザー {name} は既に登録されています")
            created = dt.datetime.now(dt.timezone.utc)
            session.add(_AccountRow(name=name, role=role, password_hash=hash_password(password), created_at=created))
        return Account(name=name, role=role, created_at=created.isoformat(timespec="seconds"))

    def set_password(self, name: str, password: str) -> None:
        password = _validate_password(password)
        with Session(self.engine) as session, session.begin():
            row = session.get(_AccountRow, name)
            if row is None:
                raise AccountError(f"ユーザー {name} は登録されていません")
            row.password_hash = hash_password(password)

    def remove(self, name: str) -> bool:
        with Session(self.engine) as session, session.begin():
            result = session.execute(delete(_AccountRow).where(_AccountRow.name == name))
        return bool(result.rowcount)

    def verify(self, name: str, password: str) -> bool:
        """The login check: True when the user exists and the password matches."""
        with Session(self.engine) as session:
            row = session.get(_AccountRow, name)
            stored = row.password_hash if row else None
        if stored is None:
            check_password(password, hash_password("dummy-password"))  # same cost for unknown users
            return False
        return check_password(password, stored)

    def role_of(self, name: str | None) -> str | None:
        if not name:
            return None
        with Session(self.engine) as session:
            row = session.get(_AccountRow, name)
            return row.role if row else None

    def accounts(self) -> list[Account]:
        with Session(self.engine) as session:
            rows = session.scalars(select(_AccountRow).order_by(_AccountRow.name)).all()
            return [
                Account(name=r.name, role=r.role, created_at=r.created_at.isoformat(timespec="seconds")) for r in rows
            ]

    def count(self) -> int:
        return len(self.accounts())


# -- command line (python -m assistant.ui.accounts) -------------------------------------------------
def _read_password() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _store_from_settings() -> AccountStore:
    from assistant.config import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    return AccountStore(settings.resolved_database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assistant.ui.accounts", description="Web アプリのログインアカウントの管理"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add", help="ユーザーを追加（パスワードは標準入力の 1 行目）")
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p = sub.add_parser("passwd", help="パスワードを変更（標準入力の 1 行目）")
    p.add_argument("name")
    p = sub.add_parser("remove", help="ユーザーを削除")
    p.add_argument("name")
    sub.add_parser("list", help="ユーザーの一覧")
    args = parser.parse_args(argv)
    store = _store_from_settings()
    try:
        if args.command == "add":
            account = store.add(args.name, args.role, _read_password())
            print(f"ユーザー {account.name}（{account.role}）を追加しました")
        elif args.command == "passwd":
            store.set_password(args.name, _read_password())
            print(f"ユーザー {args.name} のパスワードを変更しました")
        elif args.command == "remove":
            if not store.remove(args.name):
                raise AccountError(f"ユーザー {args.name} は登録されていません")
            print(f"ユーザー {args.name} を削除しました")
        else:
            for account in store.accounts():
                print(f"{account.name}\t{account.role}\t{account.created_at}")
    except AccountError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
