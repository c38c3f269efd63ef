"""Persistent dialogue state: sessions, turns, checklist answers and feedback.

SQLAlchemy 2 over `settings.resolved_database_url`: SQLite by default, or a server database such as
PostgreSQL (psycopg 3) when `database_url` names one (its schema comes from the Alembic migrations,
assistant.schema). SQLite runs in WAL mode with a busy timeout,
and every write is its own committed transaction, so a process killed between two answers loses
nothing that was already acknowledged.

A database file is checked when it is first opened (`PRAGMA quick_check`, and the history tables
exist together or not at all): a damaged or locked file gives `DatabaseUnavailable` naming the file
and what to do, and is never silently replaced by an empty one.

Concurrent requests on one session: each read returns the state's `revision`; a write given an
`expected_revision` checks it inside its write transaction (SQLite `BEGIN IMMEDIATE`) and raises
`SessionConflict` when another request changed the session in between, so no update overwrites
another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url

from assistant.validation import MAX_SESSION_ID_CHARS, InputError, ServiceError, validate_session_id

__all__ = ["DialogueStore", "StoreError", "SessionConflict", "DatabaseUnavailable", "validate_session_id"]

BUSY_TIMEOUT_MS = 10_000

metadata = MetaData()

sessions = Table(
    "dialogue_sessions",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("session_id", String(MAX_SESSION_ID_CHARS), primary_key=True),
    Column("state", Text, nullable=False, default="{}"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

turns = Table(
    "dialogue_turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("session_id", String(MAX_SESSION_ID_CHARS), nullable=False),
    Column("turn", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("kind", "session_id", "turn", "role", name="uq_turn_role"),
    ForeignKeyConstraint(["kind", "session_id"], ["dialogue_sessions.kind", "dialogue_sessions.session_id"]),
)

checklist_answers = Table(
    "checklist_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(MAX_SESSION_ID_CHARS), nullable=False),
    Column("step", String(64), nullable=False),
    Column("answer", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(MAX_SESSION_ID_CHARS), nullable=False),
    Column("turn", Integer, nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
)


# The tables of the first schema: a database holding some of them but not all has lost history.
HISTORY_TABLES = ("dialogue_sessions", "dialogue_turns", "checklist_answers", "feedback")
_NO_CHECK: Final = object()  # write without comparing revisions


class StoreError(InputError):
    """A request the store cannot satisfy (unknown session, bad id); the message is for the user."""


class SessionConflict(StoreError):
    """Another request changed the session between this request's read and its write."""


class DatabaseUnavailable(ServiceError):
    """The database file is damaged, locked or cannot be written; the message names it and what to do."""


@dataclass(frozen=True)
class SessionRecord:
    kind: str
    session_id: str
    state: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    revision: str = ""


@dataclass(frozen=True)
class TurnRecord:
    turn: int
    role: str
    text: str
    result: dict[str, Any] | None
    created_at: dt.datetime


@dataclass(frozen=True)
class AnswerRecord:
    step: str
    answer: str
    status: str
    created_at: dt.datetime


@dataclass(frozen=True)
class FeedbackRecord:
    turn: int
    rating: int
    comment: str
    created_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def revision_of(state_text: str) -> str:
    """A short fingerprint of a stored state: equal states, equal revisions."""
    return hashlib.sha256(state_text.encode("utf-8")).hexdigest()[:20]


def state_revision(state: dict[str, Any]) -> str:
    return revision_of(_dumps(state))


# -- engines --------------------------------------------------------------------------------------
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the lock up front so read-then-write sequences cannot deadlock.
        mode = "IMMEDIATE" if connection.get_execution_options().get("write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


def database_label(url: str) -> str:
    """The database as users know it: the file path for SQLite, the URL without password otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(Path(parsed.database).expanduser()) if parsed.database else ":memory:"
    return parsed.render_as_string(hide_password=True)


def unavailable(url: str, error: BaseException) -> DatabaseUnavailable:
    """The user's message for a database error: locked, full, read-only or damaged."""
    where = database_label(url)
    detail = str(getattr(error, "orig", None) or error)
    lowered = detail.lower()
    if "locked" in lowered or "busy" in lowered:
        message = (
            f"データベース {where} は他の処理が使用中（ロック中）のため使えません。"
            "しばらく待ってからもう一度お試しください。続く場合は、このファイルを開いている他のプログラムを終了してください"
        )
    elif "full" in lowered or "no space" in lowered:
        message = (
            f"ディスクの空き容量が足りないため、データベース {where} に書き込めません。"
            "空き容量を確保してからもう一度お試しください（記録済みの内容は失われていません）"
        )
    elif "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered or "permission" in lowered:
        message = f"データベース {where} を開けないか、書き込めません（{detail}）。ファイルとフォルダの権限を確認してください"
    else:
        message = (
            f"データベース {where} が壊れているため使えません（{detail}）。相談履歴を失わないよう、自動で作り直すことはしません。"
            "アプリを止めてからファイルを別の名前で退避し、バックアップがあれば元に戻してください"
            "（退避したまま再実行すると、新しい空のデータベースで始まります）"
        )
    return DatabaseUnavailable(message)


def _verify(engine: Engine, url: str) -> None:
    """Refuse a damaged database before anything is written to it; create the tables of a new one."""
    problems = ["ok"]
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            problems = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA quick_check").all()]
        existing = set(inspect(connection).get_table_names())
    if problems != ["ok"]:
        raise unavailable(url, RuntimeError("; ".join(problems[:3])))
    present = [name for name in HISTORY_TABLES if name in existing]
    if present and len(present) != len(HISTORY_TABLES):
        missing = "、".join(name for name in HISTORY_TABLES if name not in existing)
        raise unavailable(url, RuntimeError(f"表 {missing} がありません"))
    from assistant.schema import ensure_schema

    ensure_schema(engine)  # SQLite: create the tables; a server database: apply the Alembic migrations


def get_engine(url: str) -> Engine:
    """One engine per database URL and process, checked on first use; tables are created for a new database."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        try:
            if is_sqlite:
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            else:  # a server: reconnect after it restarts, enough connections for a worker's threads
                kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
            engine = create_engine(url, **kwargs)
            if is_sqlite:
                _configure_sqlite(engine)
            _verify(engine, url)
        except DatabaseUnavailable:
            engine.dispose()
            raise
        except (sa_exc.DBAPIError, OSError) as exc:
            if isinstance(engine, Engine):
                engine.dispose()
            raise unavailable(url, exc) from exc
        _ENGINES[url] = engine
        return engine


def dispose_engines() -> None:
    """Close pooled connections (tests that delete database files call this)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


@dataclass(frozen=True)
class AnswerRow:
    """A checklist input to record: the step it was given for, the (masked) text and the resulting status."""

    step: str
    answer: str
    status: str


class DialogueStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = get_engine(url)

    @classmethod
    def for_settings(cls, settings: Any) -> "DialogueStore":
        return cls(settings.resolved_database_url)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.IntegrityError:
            raise
        except sa_exc.DBAPIError as exc:
            raise unavailable(self.url, exc) from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._guard(), self.engine.connect().execution_options(write=True) as connection:
            with connection.begin():
                yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self.engine.connect() as connection:
            with connection.begin():
                yield connection

    # -- sessions -------------------------------------------------------------------------------
    def load_session(self, kind: str, session_id: str) -> SessionRecord | None:
        with self._read() as connection:
            row = connection.execute(
                select(sessions).where(sessions.c.kind == kind, sessions.c.session_id == session_id)
            ).first()
        if row is None:
            return None
        return SessionRecord(
            row.kind, row.session_id, json.loads(row.state), row.created_at, row.updated_at, revision_of(row.state)
        )

    @staticmethod
    def _check_revision(connection: Connection, kind: str, session_id: str, expected: object) -> None:
        """Inside the write transaction: the session is still as the caller read it (None: not yet created)."""
        if expected is _NO_CHECK:
            return
        stored = connection.execute(  # FOR UPDATE: a server database serialises writers here (SQLite: BEGIN IMMEDIATE)
            select(sessions.c.state).where(sessions.c.kind == kind, sessions.c.session_id == session_id).with_for_update()
        ).scalar()
        if (revision_of(stored) if stored is not None else None) != expected:
            raise SessionConflict(
                f"セッション {session_id} は、同時に届いた別の操作で先に更新されました。"
                "この操作は記録していません。画面を更新して、現在の内容を確認してからもう一度お試しください"
            )

    @staticmethod
    def _upsert_state(connection: Connection, kind: str, session_id: str, state: dict[str, Any]) -> None:
        now = _now()
        changed = connection.execute(
            update(sessions)
            .where(sessions.c.kind == kind, sessions.c.session_id == session_id)
            .values(state=_dumps(state), updated_at=now)
        ).rowcount
        if not changed:
            connection.execute(
                insert(sessions).values(kind=kind, session_id=session_id, state=_dumps(state), created_at=now, updated_at=now)
            )

    def save_state(self, kind: str, session_id: str, state: dict[str, Any], *, expected_revision: object = _NO_CHECK) -> None:
        with self._write() as connection:
            self._check_revision(connection, kind, session_id, expected_revision)
            self._upsert_state(connection, kind, session_id, state)

    def list_sessions(self, kind: str) -> list[SessionRecord]:
        with self._read() as connection:
            rows = connection.execute(
                select(sessions).where(sessions.c.kind == kind).order_by(sessions.c.updated_at.desc())
            ).all()
        return [
            SessionRecord(r.kind, r.session_id, json.loads(r.state), r.created_at, r.updated_at, revision_of(r.state))
            for r in rows
        ]

    # -- turns ----------------------------------------------------------------------------------
    def add_exchange(
        self,
        kind: str,
        session_id: str,
        user_text: str,
        reply_text: str,
        result: dict[str, Any],
        state: dict[str, Any],
        *,
        expected_revision: object = _NO_CHECK,
    ) -> int:
        """Store one user message, its reply and the new session state atomically; returns the turn number."""
        with self._write() as connection:
            self._check_revision(connection, kind, session_id, expected_revision)
            self._upsert_state(connection, kind, session_id, state)
            last = connection.execute(
                select(func.max(turns.c.turn)).where(turns.c.kind == kind, turns.c.session_id == session_id)
            ).scalar()
            number = int(last or 0) + 1
            now = _now()
            result = dict(result, turn=number)
            connection.execute(
                insert(turns),
                [
                    dict(kind=kind, session_id=session_id, turn=number, role="user", text=user_text, result=None, created_at=now),
                    dict(kind=kind, session_id=session_id, turn=number, role="assistant", text=reply_text,
                         result=_dumps(result), created_at=now),
                ],
            )
        return number

    def turns(self, kind: str, session_id: str) -> list[TurnRecord]:
        with self._read() as connection:
            rows = connection.execute(
                select(turns)
                .where(turns.c.kind == kind, turns.c.session_id == session_id)
                .order_by(turns.c.turn, turns.c.id)
            ).all()
        return [
            TurnRecord(r.turn, r.role, r.text, json.loads(r.result) if r.result else None, r.created_at) for r in rows
        ]

    def turn_count(self, kind: str, session_id: str) -> int:
        with self._read() as connection:
            last = connection.execute(
                select(func.max(turns.c.turn)).where(turns.c.kind == kind, turns.c.session_id == session_id)
            ).scalar()
        return int(last or 0)

    # -- checklist ------------------------------------------------------------------------------
    def add_checklist_answer(self, session_id: str, step: str, answer: str, status: str, state: dict[str, Any]) -> None:
        """Record an answer and the resulting conversation state in one committed transaction."""
        self.save_checklist(session_id, state, [AnswerRow(step, answer, status)])

    def save_checklist(
        self,
        session_id: str,
        state: dict[str, Any],
        answers: list[AnswerRow] | tuple[AnswerRow, ...] = (),
        *,
        expected_revision: object = _NO_CHECK,
    ) -> None:
        """The new conversation state and the inputs that led to it, in one transaction (all or nothing)."""
        with self._write() as connection:
            self._check_revision(connection, "checklist", session_id, expected_revision)
            self._upsert_state(connection, "checklist", session_id, state)
            now = _now()
            for row in answers:
                connection.execute(
                    insert(checklist_answers).values(
                        session_id=session_id, step=row.step, answer=row.answer, status=row.status, created_at=now
                    )
                )

    def checklist_answers(self, session_id: str) -> list[AnswerRecord]:
        with self._read() as connection:
            rows = connection.execute(
                select(checklist_answers)
                .where(checklist_answers.c.session_id == session_id)
                .order_by(checklist_answers.c.id)
            ).all()
        return [AnswerRecord(r.step, r.answer, r.status, r.created_at) for r in rows]

    # -- feedback -------------------------------------------------------------------------------
    def add_feedback(self, session_id: str, turn: int, rating: int, comment: str) -> None:
        with self._write() as connection:
            connection.execute(
                insert(feedback).values(session_id=session_id, turn=turn, rating=rating, comment=comment, created_at=_now())
            )

    def feedback(self, session_id: str) -> list[FeedbackRecord]:
        with self._read() as connection:
            rows = connection.execute(
                select(feedback).where(feedback.c.session_id == session_id).order_by(feedback.c.id)
            ).all()
        return [FeedbackRecord(r.turn, r.rating, r.comment, r.created_at) for r in rows]
