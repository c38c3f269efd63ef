"""Whose consultations are whose, for the list a user resumes from.

A holder is a logged-in account (``account:NAME``) or, with login off, one browser (``browser:TOKEN``, a random
token the browser keeps). The title is the start of the consultation's first question, stored as masked as the
question itself. Rows live in their own table, ``chat_consultations``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from assistant.dialogue.store import get_engine
from assistant.textnorm import normalize_inline
from assistant.validation import MAX_SESSION_ID_CHARS, InputError

TITLE_CHARS = 40
MAX_LISTED = 50
_BROWSER_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")

metadata = MetaData()

consultations = Table(
    "chat_consultations",
    metadata,
    Column("holder", String(160), primary_key=True),
    Column("session_id", String(MAX_SESSION_ID_CHARS), primary_key=True),
    Column("title", String(TITLE_CHARS + 1), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Consultation:
    session_id: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime


def account_holder(name: str) -> str:
    return f"account:{name}"


def browser_holder(token: str) -> str:
    """The holder for a browser's own token; InputError for anything that is not such a token."""
    if not _BROWSER_TOKEN.fullmatch(token or ""):
        raise InputError("ブラウザの識別子が正しくありません。ページを再読み込みしてください")
    return f"browser:{token}"


def title_from(question: str) -> str:
    """The start of a question, on one line, as the list shows it."""
    flat = normalize_inline(question).strip()
    return flat if len(flat) <= TITLE_CHARS else flat[: TITLE_CHARS - 1] + "…"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class ConsultationIndex:
    def __init__(self, database_url: str) -> None:
        self.engine = get_engine(database_url)
        metadata.create_all(self.engine)

    def touch(self, holder: str, session_id: str, question: str) -> None:
        """Note that the holder asked in this session: a new row titled by this (first) question, or a newer date."""
        now = _now()
        with self.engine.connect().execution_options(write=True) as connection, connection.begin():
            changed = connection.execute(
                update(consultations)
                .where(consultations.c.holder == holder, consultations.c.session_id == session_id)
                .values(updated_at=now)
            ).rowcount
            if changed:
                return
            try:
                with connection.begin_nested():
                    connection.execute(
                        insert(consultations).values(
                            holder=holder, session_id=session_id, title=title_from(question) or "（無題）",
                            created_at=now, updated_at=now,
                        )
                    )
            except IntegrityError:  # the same holder's other tab created it at the same moment
                pass

    def list(self, holder: str, limit: int = MAX_LISTED) -> list[Consultation]:
        """The holder's consultations, the most recently used first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(consultations)
                .where(consultations.c.holder == holder)
                .order_by(consultations.c.updated_at.desc(), consultations.c.created_at.desc())
                .limit(limit)
            ).all()
        return [Consultation(r.session_id, r.title, r.created_at, r.updated_at) for r in rows]

    def holds(self, holder: str, session_id: str) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(
                select(consultations.c.session_id).where(
                    consultations.c.holder == holder, consultations.c.session_id == session_id
                )
            ).first() is not None
