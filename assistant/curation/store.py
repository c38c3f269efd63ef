"""Corrections of the knowledge base, kept in the project's database (``Settings.resolved_database_url``).

Two tables, declared in this module's ``metadata`` (so that a migration tool can manage them):
``knowledge_corrections`` holds every change and every revert, in order, with who, when, before / after and why;
``knowledge_sources`` holds the sources that corrections name (official files, ingested documents, citation texts).
The active overlay is the changes that no revert took back. Each write is one committed transaction and then
rewrites a small revision file under ASSISTANT_HOME, which running processes watch (one ``stat`` per request) to
reload the knowledge.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from assistant.audit import Actor
from assistant.curation.effective import revision_file_of
from assistant.dialogue.store import get_engine
from assistant.knowledge.models import CuratedSource
from assistant.knowledge.overlay import Correction, Overlay

SET = "set"
REVERT = "revert"

metadata = MetaData()

corrections = Table(
    "knowledge_corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),  # set | revert
    Column("path", String(200), nullable=False),
    Column("before", Text, nullable=False),  # JSON
    Column("after", Text, nullable=False),  # JSON
    Column("confidence", String(8), nullable=True),
    Column("confidence_before", String(8), nullable=True),
    Column("source", String(200), nullable=True),
    Column("as_of", String(10), nullable=True),
    Column("reason", Text, nullable=False),
    Column("user", String(64), nullable=True),
    Column("role", String(32), nullable=True),
    Column("client", String(32), nullable=False),
    Column("at", DateTime, nullable=False),  # UTC, naive
    Column("batch", String(64), nullable=True),
    Column("reverts", Integer, nullable=True),  # a revert: the change it takes back
    Column("reverted_by", Integer, nullable=True),  # a change: the revert that took it back
    Column("corpus_hash", String(32), nullable=True),  # the shipped corpus the change was made on
    Index("ix_knowledge_corrections_path", "path"),
)

sources = Table(
    "knowledge_sources",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("data", Text, nullable=False),  # the CuratedSource as JSON
    Column("created_at", DateTime, nullable=False),
    Column("user", String(64), nullable=True),
)


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history: a change or a revert."""

    id: int
    action: str
    path: str
    before: Any
    after: Any
    confidence: str | None
    confidence_before: str | None
    source: str | None
    as_of: str | None
    reason: str
    user: str | None
    role: str | None
    client: str
    at: dt.datetime
    batch: str | None
    reverts: int | None
    reverted_by: int | None
    corpus_hash: str | None

    @property
    def active(self) -> bool:
        return self.action == SET and self.reverted_by is None

    @property
    def at_text(self) -> str:
        return self.at.replace(tzinfo=dt.timezone.utc).astimezone().isoformat(timespec="seconds")

    def correction(self) -> Correction:
        return Correction(
            id=self.id, path=self.path, before=self.before, after=self.after, confidence=self.confidence,
            confidence_before=self.confidence_before, source=self.source, as_of=self.as_of, reason=self.reason,
            user=self.user, at=self.at_text, batch=self.batch,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "action": self.action, "path": self.path, "before": self.before, "after": self.after,
            "confidence": self.confidence, "confidence_before": self.confidence_before, "source": self.source,
            "as_of": self.as_of, "reason": self.reason, "user": self.user, "role": self.role, "client": self.client,
            "at": self.at_text, "batch": self.batch, "reverts": self.reverts, "reverted_by": self.reverted_by,
            "active": self.active,
        }


@dataclass(frozen=True)
class NewCorrection:
    """A change to record (values already validated against the knowledge)."""

    path: str
    before: Any
    after: Any
    confidence: str | None
    confidence_before: str | None
    source: str | None
    as_of: str | None
    reason: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _row(r: Any) -> HistoryRow:
    return HistoryRow(
        id=r.id, action=r.action, path=r.path, before=json.loads(r.before), after=json.loads(r.after),
        confidence=r.confidence, confidence_before=r.confidence_before, source=r.source, as_of=r.as_of,
        reason=r.reason, user=r.user, role=r.role, client=r.client, at=r.at, batch=r.batch, reverts=r.reverts,
        reverted_by=r.reverted_by, corpus_hash=r.corpus_hash,
    )


class CorrectionStore:
    def __init__(self, database_url: str, revision_file: Path | None = None) -> None:
        self.engine: Engine = get_engine(database_url)  # creates or migrates the tables (assistant.schema)
        self.revision_file = revision_file
        if revision_file is not None and not revision_file.exists() and self.revision():
            self._stamp()  # a database restored without its revision file: processes must see its corrections

    @classmethod
    def for_settings(cls, settings: Any) -> CorrectionStore:
        return cls(settings.resolved_database_url, revision_file_of(settings))

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as connection, connection.begin():
            yield connection
        self._stamp()

    def _stamp(self) -> None:
        """Tell other processes that the knowledge changed (they compare the file's stat)."""
        if self.revision_file is None:
            return
        self.revision_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.revision_file.parent, prefix=f".{self.revision_file.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{self.revision()}\n")
            os.replace(tmp, self.revision_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- reading -----------------------------------------------------------------------------------
    def revision(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(corrections.c.id))).scalar() or 0)

    def history(self, path: str | None = None, *, ids: list[int] | None = None) -> list[HistoryRow]:
        query = select(corrections).order_by(corrections.c.id)
        if path:
            query = query.where(corrections.c.path == path)
        if ids is not None:
            query = query.where(corrections.c.id.in_(ids))
        with self.engine.connect() as connection:
            return [_row(r) for r in connection.execute(query).all()]

    def sources(self) -> dict[str, CuratedSource]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(sources.c.data).order_by(sources.c.created_at, sources.c.id)).all()
        found = [CuratedSource.model_validate(json.loads(r.data)) for r in rows]
        return {s.id: s for s in found}

    def overlay(self) -> Overlay:
        """The corrections in force (changes no revert took back), in the order they were made."""
        with self.engine.connect() as connection, connection.begin():
            rows = connection.execute(
                select(corrections)
                .where(corrections.c.action == SET, corrections.c.reverted_by.is_(None))
                .order_by(corrections.c.id)
            ).all()
            revision = int(connection.execute(select(func.max(corrections.c.id))).scalar() or 0)
            source_rows = connection.execute(select(sources.c.data).order_by(sources.c.created_at, sources.c.id)).all()
        active = tuple(_row(r).correction() for r in rows)
        used = {c.source for c in active}
        curated = tuple(
            s for s in (CuratedSource.model_validate(json.loads(r.data)) for r in source_rows) if s.id in used
        )
        return Overlay(active, curated, revision)

    # -- writing -----------------------------------------------------------------------------------
    def record(
        self, changes: list[NewCorrection], actor: Actor, *, new_sources: list[CuratedSource] = (),  # type: ignore[assignment]
        batch: str | None = None, corpus_hash: str | None = None,
    ) -> list[HistoryRow]:
        """Store changes (and the sources they name) in one transaction; returns the stored rows."""
        at = _now()
        ids = []
        with self._write() as connection:
            for source in new_sources:
                existing = connection.execute(select(sources.c.id).where(sources.c.id == source.id)).first()
                data = json.dumps(source.model_dump(), ensure_ascii=False)
                if existing is None:
                    connection.execute(insert(sources).values(id=source.id, data=data, created_at=at, user=actor.user))
                else:
                    connection.execute(update(sources).where(sources.c.id == source.id).values(data=data))
            for change in changes:
                result = connection.execute(
                    insert(corrections).values(
                        action=SET, path=change.path, before=json.dumps(change.before, ensure_ascii=False),
                        after=json.dumps(change.after, ensure_ascii=False), confidence=change.confidence,
                        confidence_before=change.confidence_before, source=change.source, as_of=change.as_of,
                        reason=change.reason, user=actor.user, role=actor.role, client=actor.client, at=at,
                        batch=batch, corpus_hash=corpus_hash,
                    )
                )
                ids.append(int(result.inserted_primary_key[0]))
        return self.history(ids=ids)

    def revert(self, targets: list[HistoryRow], reason: str, actor: Actor) -> list[HistoryRow]:
        """Take changes back (newest first); each revert is a history row of its own."""
        at = _now()
        ids = []
        with self._write() as connection:
            for target in sorted(targets, key=lambda t: t.id, reverse=True):
                result = connection.execute(
                    insert(corrections).values(
                        action=REVERT, path=target.path, before=json.dumps(target.after, ensure_ascii=False),
                        after=json.dumps(target.before, ensure_ascii=False), confidence=target.confidence_before,
                        confidence_before=target.confidence, source=None, as_of=None, reason=reason,
                        user=actor.user, role=actor.role, client=actor.client, at=at, batch=target.batch,
                        reverts=target.id,
                    )
                )
                revert_id = int(result.inserted_primary_key[0])
                changed = connection.execute(
                    update(corrections)
                    .where(corrections.c.id == target.id, corrections.c.reverted_by.is_(None))
                    .values(reverted_by=revert_id)
                ).rowcount
                if changed != 1:  # another request took it back meanwhile: nothing of this revert is kept
                    raise RevertConflict(f"補正 #{target.id} は既に取り消されています")
                ids.append(revert_id)
        return self.history(ids=ids)


class RevertConflict(ValueError):
    """A change was taken back by another request in between."""


