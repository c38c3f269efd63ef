"""Which logged-in user a consultation belongs to.

With login on, the first user to use a session id owns it; everyone else (administrators included)
is refused, so a help-desk account cannot read a municipal officer's consultation by guessing or
copying its id. The audit log, not the consultations themselves, is how administrators see what was
asked. With login off there are no users and sessions stay open to whoever holds the id.
Owners are kept in their own table, ``session_owners``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from assistant.dialogue.store import get_engine

OTHER_OWNER = "このセッション ID は別の利用者の相談です。ご自分のセッション ID を入力するか、新しいセッションを始めてください"
NO_OWNER = (
    "このセッション ID の相談はログインなし（またはコマンドライン）で作られたため、ログイン中は開けません。"
    "新しいセッションを始めてください"
)

metadata = MetaData()

session_owners = Table(
    "session_owners",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)


class NotOwner(PermissionError):
    """The session belongs to someone else; the message is for the user."""


class SessionOwners:
    def __init__(self, database_url: str) -> None:
        self.engine = get_engine(database_url)
        metadata.create_all(self.engine)

    def owner(self, kind: str, session_id: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(session_owners.c.owner).where(
                    session_owners.c.kind == kind, session_owners.c.session_id == session_id
                )
            ).scalar()

    def claim(self, kind: str, session_id: str, user: str, *, exists: bool) -> None:
        """Let ``user`` use the session: record them as the owner of a new one, or check that it is theirs.

        ``exists`` says whether the session already has stored content; one without an owner was made
        with login off or on the command line, and is not handed to whoever asks first."""
        owner = self.owner(kind, session_id)
        if owner is None:
            if exists:
                raise NotOwner(NO_OWNER)
            try:
                with self.engine.connect().execution_options(write=True) as connection, connection.begin():
                    connection.execute(
                        insert(session_owners).values(
                            kind=kind, session_id=session_id, owner=user,
                            created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                        )
                    )
                return
            except IntegrityError:  # someone claimed it at the same moment
                owner = self.owner(kind, session_id)
        if owner != user:
            raise NotOwner(OTHER_OWNER)
