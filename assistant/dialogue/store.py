"""Persistent dialogue state: sessions, turns, checklist answers and feedback.

SQLAlchemy 2 over `settings.resolved_database_url`. SQLite runs in WAL mode with a busy timeout,
and every write is its own committed transaction, so a process killed between two answers loses
nothing that was already acknowledged.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url

from assistant.service import InputError

BUSY_TIMEOUT_MS = 10_000
MAX_SESSION_ID_CHARS = 128

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


class StoreError(InputError):
    """A request the store cannot satisfy (unknown session, bad id); the message is for the user."""


@dataclass(frozen=True)
class SessionRecord:
    kind: str
    session_id: str
    state: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


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


def validate_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id.strip():
        raise StoreError("セッション ID を指定してください")
    text = session_id.strip()
    if len(text) > MAX_SESSION_ID_CHARS:
        raise StoreError(f"セッション ID が長すぎます（上限 {MAX_SESSION_ID_CHARS} 文字）")
    if any(not ch.isprintable() for ch in text):
        raise StoreError("セッション ID に使えない文字が含まれています")
    return text


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


def get_engine(url: str) -> Engine:
    """One engine per database URL and process; tables are created on first use."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        engine = create_engine(url, **kwargs)
        if is_sqlite:
            _configure_sqlite(engine)
        metadata.create_all(engine)
        _ENGINES[url] = engine
        return engine


def dispose_engines() -> None:
    """Close pooled connections (tests that delete database files call this)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


class DialogueStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = get_engine(url)

    @classmethod
    def for_settings(cls, settings: Any) -> "DialogueStore":
        return cls(settings.resolved_database_url)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as connection:
            with connection.begin():
                yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
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
        return SessionRecord(row.kind, row.session_id, json.loads(row.state), row.created_at, row.updated_at)

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

    def save_state(self, kind: str, session_id: str, state: dict[str, Any]) -> None:
        with self._write() as connection:
            self._upsert_state(connection, kind, session_id, state)

    def list_sessions(self, kind: str) -> list[SessionRecord]:
        with self._read() as connection:
            rows = connection.execute(
                select(sessions).where(sessions.c.kind == kind).order_by(sessions.c.updated_at.desc())
            ).all()
        return [SessionRecord(r.kind, r.session_id, json.loads(r.state), r.created_at, r.updated_at) for r in rows]

    # -- turns ----------------------------------------------------------------------------------
    def add_exchange(
        self,
        kind: str,
        session_id: str,
        user_text: str,
        reply_text: str,
        result: dict[str, Any],
        state: dict[str, Any],
    ) -> int:
        """Store one user message, its reply and the new session state atomically; returns the turn number."""
        with self._write() as connection:
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
        with self._write() as connection:
            self._upsert_state(connection, "checklist", session_id, state)
            connection.execute(
                insert(checklist_answers).values(
                    session_id=session_id, step=step, answer=answer, status=status, created_at=_now()
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
