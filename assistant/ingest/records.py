"""Where the records of ingested documents live: JSON files (default) or a database table.

A record is the masked, chunked form of one document (assistant.ingest.docstore builds it). The
file store keeps one `<doc_id>.json` per document under ASSISTANT_HOME/documents, each replaced
atomically; the database store keeps one row per document in `ingested_documents`, so workers with
different ASSISTANT_HOME folders share them. Both answer the same five questions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, delete, insert, select, update

metadata = MetaData()

RECORDS_BATCH = 500  # document records fetched at a time

documents_table = Table(
    "ingested_documents",
    metadata,
    Column("doc_id", String(32), primary_key=True),
    Column("record", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)


def write_json_atomic(path: Path, data: Any, *, durable: bool = True) -> None:
    """Write JSON to a temporary file, fsync it (when `durable`) and rename it over `path`."""
    write_bytes_atomic(path, json.dumps(data, ensure_ascii=False).encode("utf-8"), durable=durable)


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write to a temporary file and rename it over `path`; `durable`: on disk before the rename (fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync_to_disk(paths: list[Path], folder: Path) -> None:
    """Flush these files, then the folder that names them, to disk."""
    for path in [*paths, folder]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # removed again since it was written
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


FLUSH_GROUP = 256  # records of a group commit flushed together while the block goes on


class _GroupFlush:
    """Files written without a flush each, flushed FLUSH_GROUP at a time in one background thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: list[Path] = []
        self._flusher: ThreadPoolExecutor | None = None  # started by the first full group
        self._flushes: list[Future[None]] = []

    def add(self, path: Path) -> None:
        self.pending.append(path)
        if len(self.pending) >= FLUSH_GROUP:
            if self._flusher is None:
                self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record-flush")
            paths, self.pending = self.pending, []
            self._flushes.append(self._flusher.submit(sync_to_disk, paths, self.folder))

    def finish(self) -> None:
        """Flush what is left and wait for every flush (an error of one is raised)."""
        try:
            if self.pending:
                sync_to_disk(self.pending, self.folder)
                self.pending = []
            for flush in self._flushes:
                flush.result()
        finally:
            if self._flusher is not None:
                self._flusher.shutdown(wait=True)


HEADS_MEMO = ".record-heads.cache"  # not *.json: never taken for a record
CENSUS_MEMO = ".record-census.cache"
CENSUS_FORMAT = 1  # raise when `fingerprint_of` changes: a census kept from before is then not used


def record_head(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its chunks: what lists, fingerprints and counts need."""
    return {key: value for key, value in record.items() if key != "chunks"}


FINGERPRINT_CHARS = 16
RecordEntry = tuple[str, "dict[str, Any] | None"]  # a record's name and head (None when it cannot be read)


def fingerprint_of(heads: Iterable[dict[str, Any]]) -> str:
    """A digest of what the index holds of each document (its text, kind, date, title, scope); the index
    records it, and a different one means the index is stale."""
    digest = hashlib.sha256()
    for record in heads:
        _add_to_fingerprint(digest, record)
    return digest.hexdigest()[:FINGERPRINT_CHARS]



def _add_to_fingerprint(digest: Any, record: dict[str, Any]) -> None:
    digest.update(
        f"{record['doc_id']}:{record['content_hash']}:{record['kind']}:{record['as_of']}:{record['title']}:"
        f"{record.get('official', False)}:{record.get('format')}".encode()
    )
    if "scope" in record:  # who the document answers, and how sure it is, are in its chunks too
        digest.update(f":{record['scope']}:{record.get('municipality')}:{record.get('confidence')}".encode())


@dataclass(frozen=True)
class RecordCensus:
    """What an index status needs of the records: how many can be read, their fingerprint, the damaged ones."""

    count: int
    fingerprint: str
    damaged: tuple[str, ...]

    @classmethod
    def of(cls, entries: Iterable[RecordEntry]) -> "RecordCensus":
        """The census of (name, head) pairs, taken as they pass: no list of the heads is kept (a head of None:
        a damaged record). The fingerprint equals `fingerprint_of` the readable heads."""
        digest, count, damaged = hashlib.sha256(), 0, []
        for name, head in entries:
            if head is None:
                damaged.append(name)
            else:
                _add_to_fingerprint(digest, head)
                count += 1
        return cls(count=count, fingerprint=digest.hexdigest()[:FINGERPRINT_CHARS], damaged=tuple(damaged))



def _split(entries: Iterable[RecordEntry]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the heads of the readable records, the names of the damaged ones)."""
    heads: list[dict[str, Any]] = []
    damaged: list[str] = []
    for name, head in entries:
        if head is None:
            damaged.append(name)
        else:
            heads.append(head)
    return heads, damaged


class RecordStore(Protocol):
    """The records of ingested documents, by document id."""

    def all(self) -> list[dict[str, Any]]: ...

    def heads(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every readable record without its chunks, and the names of the damaged ones."""
        ...

    def census(self) -> RecordCensus: ...

    def get(self, doc_id: str) -> dict[str, Any] | None: ...

    def put(self, record: dict[str, Any]) -> None: ...

    def delete(self, doc_id: str) -> dict[str, Any] | None:
        """Remove the record; returns what it held ({} when it could not be read), None when there was none."""
        ...

    def group_commit(self) -> AbstractContextManager[None]:
        """Records put by this thread inside the block are durable when it ends (not each on its own)."""
        ...


class FileRecords:
    """One JSON file per document in `folder` (the embedded default)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._grouped = threading.local()  # .pending: the _GroupFlush of this thread's group commit

    def _path(self, doc_id: str) -> Path:
        return self.folder / f"{doc_id}.json"

    def _read_all(self) -> list[tuple[Path, dict[str, Any] | None]]:
        out: list[tuple[Path, dict[str, Any] | None]] = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                out.append((path, json.loads(path.read_text(encoding="utf-8"))))
            except (json.JSONDecodeError, OSError):
                out.append((path, None))
        return out

    def all(self) -> list[dict[str, Any]]:
        return [record for _path, record in self._read_all() if record is not None]

    def heads(self) -> tuple[list[dict[str, Any]], list[str]]:
        return _split(self._entries())

    def _entries(self) -> list[RecordEntry]:
        """Read from a memo of the heads, keyed by each file's stamp (size, time, inode); only files written
        since the memo was made are parsed, so ten thousand records cost a directory listing, not ten thousand reads."""
        memo_path = self.folder / HEADS_MEMO
        try:
            memo = orjson.loads(memo_path.read_bytes())
            memo = memo if isinstance(memo, dict) else {}
        except (OSError, orjson.JSONDecodeError):
            memo = {}
        fresh: dict[str, Any] = {}
        entries: list[RecordEntry] = []
        changed = False
        for name, file_stamp in sorted(_record_files(self.folder)):
            stamp = list(file_stamp)
            known = memo.get(name)
            if isinstance(known, dict) and known.get("stamp") == stamp:
                head = known.get("head")
            else:
                changed = True
                try:
                    head = record_head(json.loads((self.folder / name).read_text(encoding="utf-8")))
                except (json.JSONDecodeError, OSError, AttributeError):
                    head = None
            fresh[name] = {"stamp": stamp, "head": head}
            entries.append((name, head))
        if changed or len(fresh) != len(memo):
            try:
                write_bytes_atomic(memo_path, orjson.dumps(fresh), durable=False)
            except OSError:
                pass  # only a memo: the next call reads the files again
        return entries

    def census(self) -> RecordCensus:
        """Kept in a small memo keyed by every record file's stamp: while no file changed, a census costs a
        directory listing, not the heads memo (for 10,000 documents, 5 MB read into objects that a web
        worker kept about 20 MB of)."""
        stamps = sorted((name, *stamp) for name, stamp in _record_files(self.folder))
        key = hashlib.sha256(orjson.dumps([CENSUS_FORMAT, stamps])).hexdigest()
        memo_path = self.folder / CENSUS_MEMO
        try:
            memo = orjson.loads(memo_path.read_bytes())
            if memo["key"] == key:
                return RecordCensus(int(memo["count"]), str(memo["fingerprint"]), tuple(memo["damaged"]))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass
        census = RecordCensus.of(self._entries())
        try:  # keyed by the stamps taken before the heads were read: a file written meanwhile changes the key
            write_bytes_atomic(memo_path, orjson.dumps({"key": key, "count": census.count, "fingerprint": census.fingerprint,
                                                        "damaged": list(census.damaged)}), durable=False)
        except OSError:
            pass
        return census

    def get(self, doc_id: str) -> dict[str, Any] | None:
        path = self._path(doc_id)
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def put(self, record: dict[str, Any]) -> None:
        path = self._path(str(record["doc_id"]))
        group: _GroupFlush | None = getattr(self._grouped, "pending", None)
        write_json_atomic(path, record, durable=group is None)
        if group is not None:
            group.add(path)

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """The records the block writes are flushed to disk in groups, in the background, and all of them
        before the block ends: flushing each record before writing the next took about a millisecond per
        document, a third of the ingesting process's time on 10,000 files. A process killed inside the
        block loses nothing (the files are written); a power cut may lose records of the block, which the
        ingest had not reported done."""
        if getattr(self._grouped, "pending", None) is not None:
            yield  # already inside one
            return
        group = _GroupFlush(self.folder)
        self._grouped.pending = group
        try:
            yield
        except BaseException:
            with suppress(OSError):  # the block's own error is the one to report
                group.finish()
            raise
        else:
            group.finish()
        finally:
            self._grouped.pending = None

    def delete(self, doc_id: str) -> dict[str, Any] | None:
        path = self._path(doc_id)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            record = {}
        path.unlink()
        self.heads()  # the memo keeps no title or file name of a removed document
        return record


def _record_files(folder: Path) -> Iterator[tuple[str, tuple[int, int, int]]]:
    """(name, stamp) of each record file; the stamp (size, modification time, inode) changes when the record
    is written again. A file removed while the folder is listed is left out."""
    for entry in os.scandir(folder):
        if not entry.name.endswith(".json"):
            continue
        try:
            if entry.is_file():
                info = entry.stat()
                yield entry.name, (info.st_size, info.st_mtime_ns, info.st_ino)
        except FileNotFoundError:
            continue


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class DatabaseRecords:
    """One row per document in the project's database (shared by every worker that uses it)."""

    def __init__(self, url: str) -> None:
        from assistant.dialogue.store import get_engine

        self.url = url
        self.engine = get_engine(url)

    def _rows(self) -> Iterator[tuple[str, str]]:
        """(doc id, record text) of every document, fetched a batch at a time: the records carry their chunks
        (about 60 MB for 10,000 documents), and fetched all at once they stayed in a worker's memory."""
        with self.engine.connect() as connection:
            query = select(documents_table.c.doc_id, documents_table.c.record).order_by(documents_table.c.doc_id)
            for row in connection.execute(query.execution_options(yield_per=RECORDS_BATCH)):
                yield row.doc_id, row.record

    def all(self) -> list[dict[str, Any]]:
        out = []
        for _doc_id, text in self._rows():
            try:
                out.append(orjson.loads(text))
            except orjson.JSONDecodeError:
                continue
        return out

    def heads(self) -> tuple[list[dict[str, Any]], list[str]]:
        return _split(self._heads())

    def census(self) -> RecordCensus:
        return RecordCensus.of(self._heads())

    def _heads(self) -> Iterator[RecordEntry]:
        """(doc id, head) of every record; None as the head of one that is not a JSON object."""
        for doc_id, text in self._rows():
            try:
                yield doc_id, record_head(orjson.loads(text))
            except (orjson.JSONDecodeError, AttributeError):
                yield doc_id, None

    def get(self, doc_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            text = connection.execute(select(documents_table.c.record).where(documents_table.c.doc_id == doc_id)).scalar()
        return None if text is None else json.loads(text)

    def put(self, record: dict[str, Any]) -> None:
        doc_id, text = str(record["doc_id"]), json.dumps(record, ensure_ascii=False)
        with self.engine.connect().execution_options(write=True) as connection, connection.begin():
            changed = connection.execute(
                update(documents_table).where(documents_table.c.doc_id == doc_id).values(record=text, updated_at=_now())
            ).rowcount
            if not changed:
                connection.execute(insert(documents_table).values(doc_id=doc_id, record=text, updated_at=_now()))

    def group_commit(self) -> AbstractContextManager[None]:
        return nullcontext()  # each put is its own committed transaction

    def delete(self, doc_id: str) -> dict[str, Any] | None:
        with self.engine.connect().execution_options(write=True) as connection, connection.begin():
            text = connection.execute(select(documents_table.c.record).where(documents_table.c.doc_id == doc_id)).scalar()
            if text is None:
                return None
            connection.execute(delete(documents_table).where(documents_table.c.doc_id == doc_id))
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return {}


def record_store(settings: Any) -> RecordStore:
    """The database store when a database is configured (`database_url`), else the files under ASSISTANT_HOME."""
    if settings.database_url:
        return DatabaseRecords(settings.database_url)
    return FileRecords(settings.documents_dir)
