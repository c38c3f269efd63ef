"""Login accounts: salted scrypt hashes, three roles, and locking after repeated failed logins.

Accounts and locks live in tables prefixed ``account_`` in the project's database
(``Settings.resolved_database_url``), so a lock holds for every worker and process that uses it.
Manage users without the web app:

    echo 'PASSWORD' | python -m assistant.accounts add NAME 管理者
    echo 'PASSWORD' | python -m assistant.accounts add NAME 自治体職員 --municipality ○○市
    python -m assistant.accounts municipality NAME ○○市   (an empty name clears it)
    python -m assistant.accounts list
    python -m assistant.accounts remove NAME
    python -m assistant.accounts unlock NAME        (or --address 192.0.2.10)
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from assistant.audit import CLI_ACTOR, CLIENT_WEB, LOCKED_REFUSED, LOCKOUT, LOGIN, LOGIN_FAILURE, UNLOCK, Actor, AuditLog
from assistant.config import ConfigError
from assistant.dialogue.store import get_engine

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
MAX_PASSWORD_CHARS = 1024
MAX_MUNICIPALITY_CHARS = 64

SCOPE_USER = "user"
SCOPE_ADDRESS = "address"
UNKNOWN_NAME = "（未登録の名前）"  # a typed password must not end up in the audit log as a "name"


class AccountError(ValueError):
    """A user name, role or password is not acceptable; the message is for the user."""


class LoginLocked(AccountError):
    """Logins for this account or client address are locked; the message is for the user."""


metadata = MetaData()

users = Table(
    "account_users",
    metadata,
    Column("name", String(MAX_NAME_CHARS), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The municipality an account belongs to, in a table of its own so databases made before it existed need no
# migration (create_all adds the table; an account without a row has no municipality).
municipalities = Table(
    "account_municipalities",
    metadata,
    Column("name", String(MAX_NAME_CHARS), primary_key=True),
    Column("municipality", String(MAX_MUNICIPALITY_CHARS), nullable=False),
)

failures = Table(
    "account_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_account_login_failures_key", "scope", "key", "at"),
)

locks = Table(
    "account_locks",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("locked_at", DateTime, nullable=False),
    Column("locked_until", DateTime, nullable=True),  # NULL: until an administrator unlocks
)


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created_at: str
    municipality: str | None = None


@dataclass(frozen=True)
class Lock:
    scope: str
    key: str
    locked_at: dt.datetime
    locked_until: dt.datetime | None

    def describe(self, shown_key: str | None = None) -> str:
        key = shown_key or self.key
        what = f"ユーザー {key}" if self.scope == SCOPE_USER else f"アドレス {key}"
        until = "管理者が解除するまで" if self.locked_until is None else f"{_local(self.locked_until)} まで"
        return f"{what}: {until}（{_local(self.locked_at)} にロック）"


@dataclass(frozen=True)
class LoginPolicy:
    """When repeated failures lock logins (see the login_* settings)."""

    max_failures: int = 5
    max_failures_per_address: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)
    lock_for: dt.timedelta | None = dt.timedelta(minutes=15)  # None: until unlocked

    @classmethod
    def from_settings(cls, settings: object) -> LoginPolicy:
        get = lambda name: int(getattr(settings, name))  # noqa: E731
        if min(get("login_max_failures"), get("login_max_failures_per_address"), get("login_failure_window_minutes")) < 1:
            raise ConfigError("login_max_failures・login_max_failures_per_address・login_failure_window_minutes は 1 以上にしてください")
        if get("login_lock_minutes") < 0:
            raise ConfigError("login_lock_minutes は 0 以上にしてください（0 は管理者が解除するまで）")
        minutes = get("login_lock_minutes")
        return cls(
            max_failures=get("login_max_failures"),
            max_failures_per_address=get("login_max_failures_per_address"),
            window=dt.timedelta(minutes=get("login_failure_window_minutes")),
            lock_for=dt.timedelta(minutes=minutes) if minutes else None,
        )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _local(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M")


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


@functools.cache
def _dummy_hash() -> str:
    """Checked for unknown users, so they cost the same (made on first use: every process imports this module)."""
    return hash_password("dummy-password")


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


def _validate_municipality(municipality: str | None) -> str | None:
    value = (municipality or "").strip()
    if not value:
        return None
    if len(value) > MAX_MUNICIPALITY_CHARS or any(not ch.isprintable() for ch in value):
        raise AccountError(f"団体名は {MAX_MUNICIPALITY_CHARS} 文字以内で、制御文字を含めないでください")
    return value


def _validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"パスワードは {MIN_PASSWORD_CHARS} 文字以上にしてください")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"パスワードは {MAX_PASSWORD_CHARS} 文字以内にしてください")
    return password


def _lock_message(lock: Lock) -> str:
    if lock.locked_until is None:
        when = "管理者にロックの解除を依頼してください"
    else:
        when = f"{_local(lock.locked_until)} 以降に再度お試しいただくか、管理者にロックの解除を依頼してください"
    what = "このアカウント" if lock.scope == SCOPE_USER else "この端末（アドレス）からのログイン"
    return f"ログインの失敗が続いたため、{what}は一時的にロックされています。{when}"


class AccountStore:
    """Users, roles and login locks in the ``account_`` tables of one database."""

    def __init__(
        self,
        database_url: str,
        *,
        policy: LoginPolicy | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.engine: Engine = get_engine(database_url)
        metadata.create_all(self.engine)
        self.policy = policy or LoginPolicy()
        self.audit = audit
        self.clock = clock

    @classmethod
    def for_settings(cls, settings: object, *, audit: AuditLog | None = None) -> AccountStore:
        return cls(settings.resolved_database_url, policy=LoginPolicy.from_settings(settings), audit=audit)  # type: ignore[attr-defined]

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as connection, connection.begin():
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection, connection.begin():
            yield connection

    # -- users --------------------------------------------------------------------------------------
    def add(self, name: str, role: str, password: str, municipality: str | None = None) -> Account:
        name, role, password = _validate_name(name), _validate_role(role), _validate_password(password)
        body = _validate_municipality(municipality)
        created = dt.datetime.now(dt.timezone.utc)
        with self._write() as connection:
            if connection.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
                raise AccountError(f"ユーザー {name} は既に登録されています")
            connection.execute(
                insert(users).values(name=name, role=role, password_hash=hash_password(password), created_at=created)
            )
            connection.execute(delete(municipalities).where(municipalities.c.name == name))
            if body:
                connection.execute(insert(municipalities).values(name=name, municipality=body))
        return Account(name=name, role=role, created_at=created.isoformat(timespec="seconds"), municipality=body)

    def set_municipality(self, name: str, municipality: str | None) -> None:
        """Record the municipality the user belongs to (None or blank: none)."""
        body = _validate_municipality(municipality)
        if not self.exists(name):
            raise AccountError(f"ユーザー {name} は登録されていません")
        with self._write() as connection:
            connection.execute(delete(municipalities).where(municipalities.c.name == name))
            if body:
                connection.execute(insert(municipalities).values(name=name, municipality=body))

    def municipality_of(self, name: str | None) -> str | None:
        if not name:
            return None
        with self._read() as connection:
            return connection.execute(select(municipalities.c.municipality).where(municipalities.c.name == name)).scalar()

    def set_password(self, name: str, password: str) -> None:
        password = _validate_password(password)
        with self._write() as connection:
            changed = connection.execute(
                update(users).where(users.c.name == name).values(password_hash=hash_password(password))
            ).rowcount
        if not changed:
            raise AccountError(f"ユーザー {name} は登録されていません")

    def remove(self, name: str) -> bool:
        with self._write() as connection:
            connection.execute(delete(municipalities).where(municipalities.c.name == name))
            return bool(connection.execute(delete(users).where(users.c.name == name)).rowcount)

    def _stored_hash(self, name: str) -> str | None:
        with self._read() as connection:
            return connection.execute(select(users.c.password_hash).where(users.c.name == name)).scalar()

    def verify(self, name: str, password: str) -> bool:
        """The password check alone (no locks, no audit): True when the user exists and it matches."""
        stored = self._stored_hash(name)
        if stored is None:
            check_password(password, _dummy_hash())
            return False
        return check_password(password, stored)

    def role_of(self, name: str | None) -> str | None:
        if not name:
            return None
        with self._read() as connection:
            return connection.execute(select(users.c.role).where(users.c.name == name)).scalar()

    def exists(self, name: str) -> bool:
        return self.role_of(name) is not None

    def accounts(self) -> list[Account]:
        with self._read() as connection:
            rows = connection.execute(select(users).order_by(users.c.name)).all()
            bodies = dict(connection.execute(select(municipalities.c.name, municipalities.c.municipality)).all())
        return [
            Account(name=r.name, role=r.role, created_at=r.created_at.isoformat(timespec="seconds"),
                    municipality=bodies.get(r.name))
            for r in rows
        ]

    def count(self) -> int:
        with self._read() as connection:
            return int(connection.execute(select(func.count()).select_from(users)).scalar() or 0)

    # -- logins and locks ---------------------------------------------------------------------------
    def login(self, name: str, password: str, address: str | None = None, client: str = CLIENT_WEB) -> bool:
        """The web app's login check: refuses while locked (LoginLocked), counts failures, locks."""
        name = (name or "").strip()[:MAX_NAME_CHARS]
        address = (address or "")[:128] or None
        role = self.role_of(name)
        actor = Actor(user=name if role else UNKNOWN_NAME, role=role, client=client, address=address)
        lock = self.active_lock(name, address)
        if lock is not None:
            self._audit_lock(LOCKED_REFUSED, actor, lock)
            # Hammering a locked account still counts against the address it comes from.
            for new_lock in self._count_failure(None, address) if lock.scope == SCOPE_USER else []:
                self._audit_lock(LOCKOUT, actor, new_lock)
            raise LoginLocked(_lock_message(lock))
        if len(password or "") <= MAX_PASSWORD_CHARS and self.verify(name, password or ""):
            with self._write() as connection:
                connection.execute(delete(failures).where(failures.c.scope == SCOPE_USER, failures.c.key == name))
            self._audit(LOGIN, actor, "")
            return True
        new_locks = self._count_failure(name, address)
        self._audit(LOGIN_FAILURE, actor, "")
        for new_lock in new_locks:
            self._audit_lock(LOCKOUT, actor, new_lock)
        return False

    def _count_failure(self, name: str | None, address: str | None) -> list[Lock]:
        """Record a failure for the name and the address; lock those that reached their limit."""
        now = self.clock()
        since = now - self.policy.window
        keys = [(SCOPE_USER, name, self.policy.max_failures)] if name is not None else []
        if address:
            keys.append((SCOPE_ADDRESS, address, self.policy.max_failures_per_address))
        created: list[Lock] = []
        with self._write() as connection:
            connection.execute(delete(failures).where(failures.c.at < since))
            for scope, key, limit in keys:
                connection.execute(insert(failures).values(scope=scope, key=key, at=now))
                count = connection.execute(
                    select(func.count()).select_from(failures).where(
                        failures.c.scope == scope, failures.c.key == key, failures.c.at >= since
                    )
                ).scalar()
                if int(count or 0) >= limit and self._lock_row(connection, scope, key, now) is None:
                    until = now + self.policy.lock_for if self.policy.lock_for else None
                    connection.execute(delete(locks).where(locks.c.scope == scope, locks.c.key == key))
                    connection.execute(insert(locks).values(scope=scope, key=key, locked_at=now, locked_until=until))
                    created.append(Lock(scope, key, now, until))
        return created

    @staticmethod
    def _lock_row(connection: Connection, scope: str, key: str, now: dt.datetime) -> Lock | None:
        row = connection.execute(select(locks).where(locks.c.scope == scope, locks.c.key == key)).first()
        if row is None or (row.locked_until is not None and row.locked_until <= now):
            return None
        return Lock(row.scope, row.key, row.locked_at, row.locked_until)

    def active_lock(self, name: str | None, address: str | None = None) -> Lock | None:
        now = self.clock()
        with self._read() as connection:
            for scope, key in ((SCOPE_USER, name), (SCOPE_ADDRESS, address)):
                if key:
                    lock = self._lock_row(connection, scope, key, now)
                    if lock is not None:
                        return lock
        return None

    def locks(self) -> list[Lock]:
        """Locks in force now."""
        now = self.clock()
        with self._read() as connection:
            rows = connection.execute(select(locks).order_by(locks.c.locked_at)).all()
        return [
            Lock(r.scope, r.key, r.locked_at, r.locked_until)
            for r in rows
            if r.locked_until is None or r.locked_until > now
        ]

    def unlock(self, name: str | None = None, *, address: str | None = None, actor: Actor = CLI_ACTOR) -> bool:
        """Lift the lock and forget the failures of a user name or a client address."""
        scope, key = (SCOPE_USER, name) if name else (SCOPE_ADDRESS, address)
        if not key:
            raise AccountError("ロックを解除するユーザー名またはアドレスを指定してください")
        with self._write() as connection:
            lifted = connection.execute(delete(locks).where(locks.c.scope == scope, locks.c.key == key)).rowcount
            connection.execute(delete(failures).where(failures.c.scope == scope, failures.c.key == key))
        self._audit(UNLOCK, actor, f"{'ユーザー' if scope == SCOPE_USER else 'アドレス'} {key}")
        return bool(lifted)

    def _audit_lock(self, action: str, actor: Actor, lock: Lock) -> None:
        unknown = lock.scope == SCOPE_USER and actor.user == UNKNOWN_NAME
        self._audit(action, actor, lock.describe(UNKNOWN_NAME if unknown else None))

    def _audit(self, action: str, actor: Actor, detail: str) -> None:
        if self.audit is not None:
            self.audit.record(action, actor, detail=detail)


# -- command line (python -m assistant.accounts) ----------------------------------------------------
def _read_password() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _store_from_settings() -> AccountStore:
    from assistant.config import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    return AccountStore.for_settings(settings, audit=AuditLog.for_settings(settings, purge_now=False))


def main(argv: list[str] | None = None, prog: str = "python -m assistant.accounts") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Web アプリのログインアカウントの管理")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add", help="ユーザーを追加（パスワードは標準入力の 1 行目）")
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p.add_argument("--municipality", help="所属する団体（例: ○○市）。団体の資料はその団体の利用者への回答にだけ使われます")
    p = sub.add_parser("municipality", help="所属する団体を設定（空文字で解除）")
    p.add_argument("name")
    p.add_argument("municipality")
    p = sub.add_parser("passwd", help="パスワードを変更（標準入力の 1 行目）")
    p.add_argument("name")
    p = sub.add_parser("remove", help="ユーザーを削除")
    p.add_argument("name")
    sub.add_parser("list", help="ユーザーの一覧（ロック中のものを含む）")
    p = sub.add_parser("unlock", help="ログインのロックを解除")
    p.add_argument("name", nargs="?", help="ユーザー名")
    p.add_argument("--address", help="ユーザー名の代わりに、ロックされたアドレスを解除する")
    args = parser.parse_args(argv)
    try:
        store = _store_from_settings()
        if args.command == "add":
            account = store.add(args.name, args.role, _read_password(), args.municipality)
            body = f"、{account.municipality}" if account.municipality else ""
            print(f"ユーザー {account.name}（{account.role}{body}）を追加しました")
        elif args.command == "municipality":
            store.set_municipality(args.name, args.municipality)
            body = args.municipality.strip()
            print(f"ユーザー {args.name} の所属を{body}にしました" if body else f"ユーザー {args.name} の所属を解除しました")
        elif args.command == "passwd":
            store.set_password(args.name, _read_password())
            print(f"ユーザー {args.name} のパスワードを変更しました")
        elif args.command == "remove":
            if not store.remove(args.name):
                raise AccountError(f"ユーザー {args.name} は登録されていません")
            print(f"ユーザー {args.name} を削除しました")
        elif args.command == "unlock":
            if bool(args.name) == bool(args.address):
                raise AccountError("ユーザー名か --address のどちらか一つを指定してください")
            lifted = store.unlock(args.name, address=args.address)
            target = f"ユーザー {args.name}" if args.name else f"アドレス {args.address}"
            print(f"{target} のロックを解除しました" if lifted else f"{target} はロックされていません（失敗の記録は消去しました）")
        else:
            for account in store.accounts():
                print(f"{account.name}\t{account.role}\t{account.municipality or '-'}\t{account.created_at}")
            for lock in store.locks():
                print(f"ロック中\t{lock.describe()}")
    except (AccountError, ConfigError) as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
