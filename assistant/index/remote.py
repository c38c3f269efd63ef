"""The index on servers: vectors in a Chroma server, chunks and BM25 tokens in the database.

Workers with different ASSISTANT_HOME folders share one published index. The row `index_state`
('current') names the published build, its Chroma collection and a version number that grows with
every change; workers compare that number (one small query, at most once a second) and reload when
it changed. A worker writes the published build to files of its own (chunks, rows, BM25 arrays) and serves them.

A full build writes a new collection and new chunk rows under a new build id, then publishes them
in one transaction: until then every worker answers from the previous build, which is kept one
generation as the fallback. An incremental update changes the current build's rows in one
transaction and its collection in place; a worker that has not reloaded yet ignores dense hits it
does not know.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import numpy as np
import orjson
from filelock import FileLock

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, delete, func, insert, select, update

from assistant.chunk import Chunk
from assistant.index.analysis import analyse_chunks
from assistant.index.chunk_table import ChunkRow, ChunkTable, decode_rows, encode_rows
from assistant.index.embeddings import get_embedder
from assistant.index.lexical import LexicalIndex
from assistant.index.store import CHUNKS_FILE, LEXICAL_DIR, ROWS_FILE

metadata = MetaData()

index_state = Table(
    "index_state",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("build_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("collection", String(128), nullable=False),
    Column("previous_build_id", String(64), nullable=True),
    Column("manifest", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

index_chunks = Table(
    "index_chunks",
    metadata,
    Column("build_id", String(64), primary_key=True),
    Column("source_id", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("doc_id", String(32), nullable=True, index=True),
    Column("chunk", Text, nullable=False),
    Column("tokens", Text, nullable=False),
)

CURRENT = "current"
STAMP_SECONDS = 1.0  # how often a worker asks whether a new version was published
INSERT_BATCH = 2000
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
_stamps: dict[str, tuple[float, Any]] = {}


def chroma_server(url: str):  # noqa: ANN201 - chromadb.ClientAPI
    """One HttpClient per server URL and process (telemetry off)."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            parts = urlsplit(url)
            client = chromadb.HttpClient(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=ChromaSettings(anonymized_telemetry=False),
            )
            _clients[url] = client
        return client


def _engine(settings: Any):  # noqa: ANN202
    from assistant.dialogue.store import get_engine

    return get_engine(settings.database_url)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _state(settings: Any) -> Any:
    with _engine(settings).connect() as connection:
        return connection.execute(select(index_state).where(index_state.c.name == CURRENT)).first()


def remote_stamp(settings: Any) -> Any:
    """(build id, version) of the published index, asked at most once a second per process."""
    cached = _stamps.get(settings.database_url)
    now = time.monotonic()
    if cached and now - cached[0] < STAMP_SECONDS:
        return cached[1]
    try:
        row = _state(settings)
    except Exception:  # noqa: BLE001 - the database is away: keep serving what is loaded
        return cached[1] if cached else None
    stamp = (row.build_id, row.version) if row else None
    _stamps[settings.database_url] = (now, stamp)
    return stamp


def label(build_id: str, version: int) -> str:
    return f"{build_id}@{version}"


def remote_build_id(settings: Any) -> str | None:
    row = _state(settings)
    return label(row.build_id, row.version) if row else None


def _forget_stamp(settings: Any) -> None:
    _stamps.pop(settings.database_url, None)


# -- writing --------------------------------------------------------------------------------------
def _rows(build_id: str, chunks: list[Chunk], tokens: list[list[str]], first_position: int) -> list[dict[str, Any]]:
    return [
        {"build_id": build_id, "source_id": c.source_id, "position": first_position + i, "doc_id": c.meta.get("doc_id"),
         "chunk": json.dumps(c.to_dict(), ensure_ascii=False), "tokens": json.dumps(t, ensure_ascii=False)}
        for i, (c, t) in enumerate(zip(chunks, tokens))
    ]


def _insert(connection: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        connection.execute(insert(index_chunks), rows[start : start + INSERT_BATCH])


def build_remote(settings: Any, knowledge: Any, *, progress: Callable[[str], None] | None = None) -> Any:
    from assistant.index.locks import index_lock
    from assistant.index.store import (
        BuildReport,
        _new_build_id,
        add_vectors,
        all_chunks,
        build_manifest,
        chunk_summary,
        document_store,
    )

    say = progress or (lambda _message: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with index_lock(settings):
        store = document_store(settings)
        chunks = all_chunks(knowledge, store)
        build_id = _new_build_id()
        say(f"{len(chunks)} チャンクを解析しています（形態素解析と埋め込みベクトル）")
        t0 = time.perf_counter()
        embedder = get_embedder(settings)
        analysed = analyse_chunks(chunks, settings)
        timings["analyse_seconds"] = time.perf_counter() - t0
        say("ベクトルを Chroma サーバーに保存しています")
        t0 = time.perf_counter()
        client = chroma_server(settings.chroma_url)
        collection_name = f"chunks-{build_id}"
        collection = client.create_collection(collection_name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        try:
            add_vectors(collection, chunks, analysed.vectors)
            timings["chroma_seconds"] = time.perf_counter() - t0
            say("チャンクをデータベースに保存しています")
            t0 = time.perf_counter()
            summary = chunk_summary(chunks)
            manifest = build_manifest(build_id, knowledge, store, embedder, summary) | {"collection": collection_name}
            with _engine(settings).connect().execution_options(write=True) as connection, connection.begin():
                _insert(connection, _rows(build_id, chunks, analysed.tokens, 0))
                old = connection.execute(select(index_state).where(index_state.c.name == CURRENT)).first()
                values = dict(build_id=build_id, collection=collection_name, manifest=json.dumps(manifest, ensure_ascii=False),
                              updated_at=_now(), previous_build_id=old.build_id if old else None)
                if old:
                    connection.execute(update(index_state).where(index_state.c.name == CURRENT)
                                       .values(version=old.version + 1, **values))
                else:
                    connection.execute(insert(index_state).values(name=CURRENT, version=1, **values))
            timings["database_seconds"] = time.perf_counter() - t0
        except BaseException:
            client.delete_collection(collection_name)
            raise
        _prune(settings, keep={build_id, old.build_id if old else ""})
    _forget_stamp(settings)
    return BuildReport(build_id=build_id, chunks=len(chunks), documents=manifest["documents"],
                       seconds=time.perf_counter() - started, size_bytes=0, timings=timings)


def _prune(settings: Any, keep: set[str]) -> None:
    """Delete chunk rows and collections of builds older than the previous one."""
    with _engine(settings).connect().execution_options(write=True) as connection, connection.begin():
        connection.execute(delete(index_chunks).where(index_chunks.c.build_id.not_in(keep)))
    client = chroma_server(settings.chroma_url)
    for collection in client.list_collections():
        name = getattr(collection, "name", collection)
        if name.startswith("chunks-") and name.removeprefix("chunks-") not in keep:
            client.delete_collection(name)


def update_remote(settings: Any, knowledge: Any, doc_ids: set[str], *, prepared: Any = None,
                  progress: Callable[[str], None] | None = None) -> Any:
    from assistant.index.locks import index_lock
    from assistant.index.store import (
        BuildReport,
        add_vectors,
        changed_chunks,
        delete_vectors,
        document_store,
        fingerprint_of,
        texts_after_change,
    )

    say = progress or (lambda _message: None)
    started = time.perf_counter()
    with index_lock(settings):
        row = _state(settings)
        manifest = json.loads(row.manifest) if row else {}
        if not row or manifest.get("corpus_hash") != knowledge.content_hash or (
            manifest.get("embedding_model") != get_embedder(settings).model_id
        ):
            say("差分で更新できる索引がないため、索引全体を作成します")
            return None
        store = document_store(settings)
        new_chunks, analysed = changed_chunks(settings, store, doc_ids, prepared)
        engine = _engine(settings)
        with engine.connect() as connection:
            removed = [r.source_id for r in connection.execute(
                select(index_chunks.c.source_id).where(index_chunks.c.build_id == row.build_id,
                                                       index_chunks.c.doc_id.in_(sorted(doc_ids))))]
            last = connection.execute(select(func.max(index_chunks.c.position))
                                      .where(index_chunks.c.build_id == row.build_id)).scalar() or 0
        say(f"{len(doc_ids)} 件の文書の索引を更新しています（削除 {len(removed)}、追加 {len(new_chunks)} チャンク）")
        collection = chroma_server(settings.chroma_url).get_collection(row.collection)
        delete_vectors(collection, removed)
        add_vectors(collection, new_chunks, analysed.vectors)
        heads = store.record_heads()
        with engine.connect().execution_options(write=True) as connection, connection.begin():
            connection.execute(delete(index_chunks).where(index_chunks.c.build_id == row.build_id,
                                                          index_chunks.c.source_id.in_(removed)))
            _insert(connection, _rows(row.build_id, new_chunks, analysed.tokens, last + 1))
            total = connection.execute(select(func.count()).select_from(index_chunks)
                                       .where(index_chunks.c.build_id == row.build_id)).scalar()
            manifest.update(chunks=total, documents=len(heads), documents_fingerprint=fingerprint_of(heads),
                            document_texts=texts_after_change(manifest, doc_ids, new_chunks),
                            built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
            connection.execute(update(index_state).where(index_state.c.name == CURRENT).values(
                version=row.version + 1, manifest=json.dumps(manifest, ensure_ascii=False), updated_at=_now()))
    _forget_stamp(settings)
    return BuildReport(build_id=label(row.build_id, row.version + 1), chunks=int(total), documents=len(heads),
                       seconds=time.perf_counter() - started, size_bytes=0, incremental=True,
                       added_chunks=len(new_chunks), removed_chunks=len(removed))


# -- reading --------------------------------------------------------------------------------------
LOCAL_COPIES = "server-copies"  # under index_dir: a worker's files of the published build it serves
POSITIONS_FILE = "positions.npy"  # a copy's rows' positions in the database (with the build's other files)
UNFINISHED_PREFIX = ".writing-"
READ_BATCH = 2000


class RemoteSearchIndex:
    """The published index as one worker serves it (the same attributes as `SearchIndex`).

    The worker writes the published build's chunks, rows and BM25 arrays to files of its own once per
    version, streaming them from the database, and then serves them as an embedded build is served: chunks
    read when asked, arrays mapped. Holding every chunk and token list in the process took more than
    1 GB at 50,000 chunks.
    """

    def __init__(self, settings: Any) -> None:
        from assistant.index.store import IndexError_

        self.embedder = get_embedder(settings)
        row, _folder, self.chunks, self.bm25 = _open_published_copy(settings)
        try:
            self.manifest: dict[str, Any] = json.loads(row.manifest)
            if self.manifest.get("embedding_model") != self.embedder.model_id:
                raise IndexError_("索引の埋め込みモデルが設定と異なります。`assistant index rebuild` を実行してください")
            self.collection = chroma_server(settings.chroma_url).get_collection(row.collection)
        except BaseException:
            self.chunks.close()
            raise
        self.rows = self.chunks.rows
        self.by_id = self.chunks.by_id
        self.position = self.chunks.position
        self._build_id = label(row.build_id, row.version)
        self.folder = None
        self.chroma_path = None
        self.fallback_from: str | None = None
        self.fallback_reason: str | None = None

    @property
    def build_id(self) -> str:
        return self._build_id

    def close(self) -> None:
        """Close the chunk file (the collection lives in the server)."""
        self.chunks.close()


class PublishedState(NamedTuple):
    build_id: str
    version: int
    collection: str
    manifest: str


COPY_ATTEMPTS = 3
# A copy that cannot be read: a file cut short by a crash or a full disk, or damaged on disk.
_UNREADABLE = (OSError, ValueError, EOFError, IndexError)


def _open_published_copy(settings: Any) -> tuple[PublishedState, Path, ChunkTable, LexicalIndex]:
    """This worker's copy of the published build, opened: written when missing, and written again when it
    cannot be read. IndexError_ when nothing is published or no readable copy can be made."""
    from assistant.index.store import IndexError_

    problem: BaseException | None = None
    for _attempt in range(COPY_ATTEMPTS):
        row, folder = _published_copy(settings)
        if row is None or folder is None:
            raise IndexError_("索引がまだありません。`assistant index build` を実行してください")
        try:
            return (row, folder, *_opened(folder))
        except _UNREADABLE as exc:
            problem = exc
            if (folder / ROWS_FILE).is_file():  # damaged, not removed by a worker of this home serving a newer version
                _discard(settings, folder)
    raise IndexError_(
        f"サーバーの索引を {settings.index_dir / LOCAL_COPIES} に書き出しても読めません（{type(problem).__name__}: {problem}）。"
        "空き容量と権限を確かめてください"
    )


def _opened(folder: Path) -> tuple[ChunkTable, LexicalIndex]:
    chunks = ChunkTable(folder / CHUNKS_FILE, decode_rows((folder / ROWS_FILE).read_bytes()))
    try:
        bm25 = LexicalIndex.load(folder / LEXICAL_DIR)
        if bm25.rows != len(chunks):
            raise ValueError(f"the copy's BM25 part has {bm25.rows} rows for {len(chunks)} chunks")
    except BaseException:
        chunks.close()
        raise
    return chunks, bm25


def _published_copy(settings: Any) -> tuple[PublishedState | None, Path | None]:
    """`_local_copy`, written when missing by a short-lived process of its own: writing it holds the GIL for
    seconds at 50,000 chunks, and the memory it needs for a while (about 250 MB) would stay with the worker."""
    row, folder = _local_copy(settings, write=False)
    if row is None or folder is not None:
        return row, folder
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("forkserver")) as pool:
        return pool.submit(_local_copy, settings).result()


def _copies_lock(settings: Any) -> FileLock:
    """Held while a process of this home writes or removes copies (several workers may share a home)."""
    root = settings.index_dir / LOCAL_COPIES
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".lock"))


def _local_copy(settings: Any, *, write: bool = True) -> tuple[PublishedState | None, Path | None]:
    """(the published state, the folder of this worker's copy of it), the copy written when missing; (None,
    None) when nothing is published, (state, None) when the copy is missing and `write` is off. State and rows
    are read in one transaction, so a change published meanwhile is not half in the copy."""
    lock = _copies_lock(settings) if write else nullcontext()
    with lock:
        engine = _engine(settings)
        options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
        with engine.connect().execution_options(**options) as connection, connection.begin():
            found = connection.execute(select(index_state).where(index_state.c.name == CURRENT)).first()
            if found is None:
                return None, None
            row = PublishedState(found.build_id, found.version, found.collection, found.manifest)
            root = settings.index_dir / LOCAL_COPIES
            folder = root / label(row.build_id, row.version)
            if (folder / ROWS_FILE).is_file():
                return row, folder
            if not write:
                return row, None
            _remove_unfinished(root)
            _write_local_copy(connection, row.build_id, root, folder)
        _remove_older_copies(root, row)
    return row, folder


def _discard(settings: Any, folder: Path) -> None:
    with _copies_lock(settings):
        shutil.rmtree(folder, ignore_errors=True)


def _write_local_copy(connection: Any, build_id: str, root: Path, folder: Path) -> None:
    staging = root / f"{UNFINISHED_PREFIX}{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        earlier = _earlier_copy(root, build_id)
        if earlier is None or not _copy_changes(connection, build_id, earlier, staging):
            _copy_all(connection, build_id, staging)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_all(connection: Any, build_id: str, staging: Path) -> None:
    rows: list[ChunkRow] = []
    positions: list[int] = []
    result = connection.execute(
        select(index_chunks.c.position, index_chunks.c.chunk, index_chunks.c.tokens)
        .where(index_chunks.c.build_id == build_id).order_by(index_chunks.c.position)
        .execution_options(yield_per=READ_BATCH)
    )
    with (staging / CHUNKS_FILE).open("wb") as chunk_file:

        def token_batches() -> Iterator[list[list[str]]]:
            # One pass over the rows: each batch's chunks are written out, and its token lists counted and
            # dropped (all of them at once took most of the memory).
            for batch in result.partitions():
                lines = [r.chunk.encode("utf-8") for r in batch]
                chunk_file.writelines(line + b"\n" for line in lines)
                rows.extend(ChunkRow.of_line(line) for line in lines)
                positions.extend(r.position for r in batch)
                yield [orjson.loads(r.tokens) for r in batch]

        lexical = LexicalIndex.empty().appended_batches(token_batches())
    _finish_copy(staging, rows, positions, lexical)


def _copy_changes(connection: Any, build_id: str, earlier: Path, staging: Path) -> bool:
    """The copy of an earlier version of the same build, with the rows an update removed left out and the
    ones it added fetched: an update deletes rows and appends new ones after the last position, so the rows
    that stay keep their order. False when the rows do not fit that, when most rows are new, or when the
    earlier copy cannot be read (what was written to `staging` is then replaced)."""
    current = connection.execute(select(index_chunks.c.source_id, index_chunks.c.position)
                                 .where(index_chunks.c.build_id == build_id).order_by(index_chunks.c.position)).all()
    try:
        old_rows = decode_rows((earlier / ROWS_FILE).read_bytes())
        old_positions = np.load(earlier / POSITIONS_FILE)
        lexical = LexicalIndex.load(earlier / LEXICAL_DIR)
        if not len(old_rows) == len(old_positions) == lexical.rows:
            return False
        present = {(r.source_id, r.position) for r in current}
        keep = [(row.source_id, int(at)) in present for row, at in zip(old_rows, old_positions)]
        kept_rows = [row for row, stays in zip(old_rows, keep) if stays]
        added = current[len(kept_rows):]
        if [r.source_id for r in current[: len(kept_rows)]] != [r.source_id for r in kept_rows]:
            return False
        if len(added) > len(kept_rows):  # mostly new rows: one streamed pass over all of them is faster
            return False
        fetched = _fetch(connection, build_id, [r.source_id for r in added])
        new_lines = [fetched[r.source_id].chunk.encode("utf-8") for r in added]
        if _copy_kept_lines(earlier / CHUNKS_FILE, staging / CHUNKS_FILE, keep, new_lines) != len(old_rows):
            return False
        dropped = [i for i, stays in enumerate(keep) if not stays]
        lexical = lexical.without(dropped).appended([orjson.loads(fetched[r.source_id].tokens) for r in added])
    except _UNREADABLE:
        return False
    rows = kept_rows + [ChunkRow.of_line(line) for line in new_lines]
    _finish_copy(staging, rows, [r.position for r in current], lexical)
    return True


def _fetch(connection: Any, build_id: str, source_ids: list[str]) -> dict[str, Any]:
    fetched: dict[str, Any] = {}
    for start in range(0, len(source_ids), READ_BATCH):
        wanted = source_ids[start : start + READ_BATCH]
        fetched.update((r.source_id, r) for r in connection.execute(
            select(index_chunks.c.source_id, index_chunks.c.chunk, index_chunks.c.tokens)
            .where(index_chunks.c.build_id == build_id, index_chunks.c.source_id.in_(wanted))))
    return fetched


def _copy_kept_lines(source: Path, target: Path, keep: list[bool], new_lines: list[bytes]) -> int:
    """Write the kept lines of `source`, then the new ones; the number of lines `source` had."""
    lines = 0
    with source.open("rb") as old, target.open("wb") as new:
        for line in old:
            if lines < len(keep) and keep[lines]:
                new.write(line)
            lines += 1
        new.writelines(line + b"\n" for line in new_lines)
    return lines


def _finish_copy(staging: Path, rows: list[ChunkRow], positions: list[int], lexical: LexicalIndex) -> None:
    lexical.save(staging / LEXICAL_DIR)
    np.save(staging / POSITIONS_FILE, np.asarray(positions, dtype=np.int64))
    (staging / ROWS_FILE).write_bytes(encode_rows(rows))  # written last: a copy with it is complete


def _earlier_copy(root: Path, build_id: str) -> Path | None:
    """The complete copy of the newest earlier version of this build, if this home has one."""
    versions = [(version, folder) for folder in root.glob(f"{build_id}@*")
                if (version := _version_of(folder)) is not None and (folder / ROWS_FILE).is_file()]
    return max(versions)[1] if versions else None


def _version_of(folder: Path) -> int | None:
    version = folder.name.rpartition("@")[2]
    return int(version) if version.isdigit() else None


def _remove_unfinished(root: Path) -> None:
    """Copies a killed process left half-written (only the lock's holder writes, so any found is left over):
    they may hold text of documents removed since."""
    for folder in root.glob(f"{UNFINISHED_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)


def _remove_older_copies(root: Path, current: PublishedState) -> None:
    """Copies of earlier versions and builds; a worker still serving one keeps reading it (its files stay
    open). A newer copy (another worker of this home moved on) is left alone."""
    for folder in root.iterdir():
        build_id = folder.name.rpartition("@")[0]
        version = _version_of(folder)
        if version is not None and (build_id, version) < (current.build_id, current.version):
            shutil.rmtree(folder, ignore_errors=True)


def open_remote(settings: Any) -> RemoteSearchIndex:
    return RemoteSearchIndex(settings)


def chroma_answers(url: str) -> tuple[bool, str]:
    try:
        chroma_server(url).heartbeat()
        return True, "応答あり"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return False, f"{type(exc).__name__}: {exc}"[:200]


def remote_status(settings: Any, knowledge: Any) -> dict[str, Any]:
    from assistant.index.store import document_store

    census = document_store(settings).record_census()
    status: dict[str, Any] = {
        "backend": "chroma-server",
        "chroma_url": settings.chroma_url,
        "documents_registered": census.count,
        "damaged_document_records": list(census.damaged),
    }
    row = _state(settings)
    if row is None:
        status.update(state="missing", exists=False)
        return status
    manifest = json.loads(row.manifest)
    stale = []
    if manifest.get("corpus_hash") != knowledge.content_hash:
        stale.append("corpus")
    if manifest.get("documents_fingerprint") != census.fingerprint:
        stale.append("documents")
    if manifest.get("embedding_model") != get_embedder(settings).model_id:
        stale.append("embedding_model")
    status.update(
        exists=True, state="stale" if stale else "ready", stale_reasons=stale, build_id=label(row.build_id, row.version),
        built_at=manifest.get("built_at"), chunks=manifest.get("chunks"), documents=manifest.get("documents"),
        embedding_model=manifest.get("embedding_model"), kinds=manifest.get("kinds"), collection=row.collection,
        fallback_build=row.previous_build_id, missing_files=[], damaged_files=[], unexpected_files=[],
    )
    return status
