"""Atomic index builds and opening the current index.

A build is written to a hidden temporary folder, renamed to `build-…` when complete and only
then published by replacing the `CURRENT` pointer file. A failed or killed build leaves the
previous index answering; leftovers are cleaned by the next build.

The manifest lists the sha256 of every file of the build; a build is verified before it is used
(assistant.index.integrity). When the current build does not verify, the previous good build is
opened instead, or the message says to run `assistant index rebuild`. The previous build is kept
as that fallback only when it holds no document text that the new build no longer has (a removed
document, or text that has since been masked); every other old build is deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from filelock import FileLock

from assistant.chunk import Chunk
from assistant.config import Settings
from assistant.index.analysis import Analysed, analyse_chunks, index_text
from assistant.index.chunk_table import ChunkRow, ChunkTable, decode_rows, encode_rows
from assistant.index.embeddings import CHIVE_MODEL_ID, Embedder, get_embedder
from assistant.index.integrity import (
    CHROMA,
    MANIFEST,
    BuildCheck,
    build_checksums,
    build_stamps,
    copy_verified,
    remove_stale_working_copies,
    verify_build,
    working_copy,
)
from assistant.index.lexical import LexicalIndex
from assistant.ingest.docstore import DocumentStore, write_json_atomic
from assistant.ingest.records import fingerprint_of
from assistant.knowledge import Knowledge
from assistant.knowledge.chunks import corpus_chunks

COLLECTION = "chunks"
CHROMA_BATCH = 1000
# 2: the manifest lists the checksums of the build's files and the text digest of each document.
# 3: the lexical part keeps term counts (assistant.index.lexical) and tokens.jsonl the BM25 tokens of
#    each chunk, so that a document can be added or removed without indexing the others again.
# 4: the lexical arrays are .npy files (mapped when opened) and rows.json holds what filters need per chunk.
# 5: a row's scope is always named (public when the document has none).
# 6: rows.json holds the rows column by column (`encode_rows`).
INDEX_FORMAT = 6
CHUNKS_FILE = "chunks.jsonl"
TOKENS_FILE = "tokens.jsonl"
ROWS_FILE = "rows.json"  # a ChunkRow per chunk: an update and an opened index need not parse every chunk
LEXICAL_DIR = "bm25"


class IndexError_(RuntimeError):
    """The index is missing or damaged; the message says what to run."""


def chroma_client(path: Path):  # noqa: ANN201 - chromadb types are heavy to import eagerly
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))


def documents_fingerprint(store: DocumentStore) -> str:
    return fingerprint_of(store.record_heads())


def document_texts(chunks: list[Chunk]) -> dict[str, str]:
    """doc_id → digest of everything the index holds of that document (text, titles, locators)."""
    digests: dict[str, Any] = {}
    for chunk in chunks:
        doc_id = chunk.meta.get("doc_id")
        if doc_id:
            digests.setdefault(doc_id, hashlib.sha256()).update(
                f"{chunk.source_id}\0{chunk.title}\0{chunk.locator}\0{chunk.origin}\0{chunk.text}\0".encode()
            )
    return {doc_id: digest.hexdigest() for doc_id, digest in sorted(digests.items())}


@dataclass
class BuildReport:
    build_id: str
    chunks: int
    documents: int
    seconds: float
    size_bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    incremental: bool = False
    added_chunks: int = 0
    removed_chunks: int = 0
    staged_vectors: bool = False  # the vectors were written during the ingest (assistant.index.staging)


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _current_pointer(settings: Settings) -> Path:
    return settings.index_dir / "CURRENT"


def pointer_path(settings: Settings) -> Path:
    """The file that names the published build (replaced atomically by each build)."""
    return _current_pointer(settings)


def current_build_dir(settings: Settings) -> Path | None:
    pointer = _current_pointer(settings)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return settings.index_dir / name if name else None


def read_manifest(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("manifest.json is not an object")
    return data


def chroma_metadata(chunk: Chunk) -> dict[str, Any]:
    """What a vector query filters on. The text stays in the build's chunk file: Chroma would keep a second copy
    and a full-text index of every text, most of its database, which no query here uses."""
    return {"kind": chunk.kind, "as_of": chunk.as_of, "confidence": chunk.confidence}


def add_vectors(collection: Any, chunks: list[Chunk], vectors: np.ndarray) -> None:
    """Add chunks with their vectors to a Chroma collection (embedded or server), in batches."""
    for start in range(0, len(chunks), CHROMA_BATCH):
        batch = chunks[start : start + CHROMA_BATCH]
        collection.add(
            ids=[c.source_id for c in batch],
            embeddings=vectors[start : start + len(batch)],
            metadatas=[chroma_metadata(c) for c in batch],
        )


def delete_vectors(collection: Any, ids: list[str]) -> None:
    for start in range(0, len(ids), CHROMA_BATCH):
        collection.delete(ids=ids[start : start + CHROMA_BATCH])


SYNC_THRESHOLD = 1000  # Chroma's default: the vector segment is written after this many operations


def flush_log(folder: Path) -> None:
    """Make embedded Chroma write its vector segment now, so that its write-ahead log, which holds a copy of
    every added text until then, is purged (a removed document must not stay there; the build gets smaller).

    Chroma writes the segment when the unwritten operations reach `sync_threshold`, which a client reads when
    it first loads the segment: lower it in one client, write one chunk again unchanged in the next, restore."""
    client = chroma_client(folder)
    try:
        collection = client.get_collection(COLLECTION)
        if not collection.count():
            return
        collection.modify(configuration={"hnsw": {"sync_threshold": 2, "batch_size": 2}})
    finally:
        client.close()
    client = chroma_client(folder)
    try:
        collection = client.get_collection(COLLECTION)
        sample = collection.get(limit=1, include=["embeddings", "metadatas"])
        collection.upsert(ids=sample["ids"], embeddings=sample["embeddings"], metadatas=sample["metadatas"])
        collection.modify(configuration={"hnsw": {"sync_threshold": SYNC_THRESHOLD, "batch_size": 100}})
    finally:
        client.close()


def _write_chroma(folder: Path, chunks: list[Chunk], vectors: np.ndarray) -> None:
    client = chroma_client(folder)
    try:
        collection = client.create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        add_vectors(collection, chunks, vectors)
    finally:
        client.close()
    flush_log(folder)  # everything on disk, and nothing left in the log, before the checksums are taken


def _write_lexical(folder: Path, chunks: list[Chunk], tokens: list[list[str]], lexical: LexicalIndex) -> None:
    # orjson: the standard encoder took most of the time of writing a 50,000-chunk build.
    _write_lines(
        folder,
        [orjson.dumps(chunk.to_dict()) for chunk in chunks],
        [orjson.dumps(row) for row in tokens],
        [ChunkRow.of(chunk) for chunk in chunks],
        lexical,
    )


def _write_lines(folder: Path, chunk_lines: list[bytes], token_lines: list[bytes], rows: list[ChunkRow],
                 lexical: LexicalIndex) -> None:
    """The build's chunk and token files (one JSON line per chunk), the row list and the lexical index."""
    with (folder / CHUNKS_FILE).open("wb") as handle:
        handle.writelines(line + b"\n" for line in chunk_lines)
    with (folder / TOKENS_FILE).open("wb") as handle:
        handle.writelines(line + b"\n" for line in token_lines)
    (folder / ROWS_FILE).write_bytes(encode_rows(rows))
    lexical.save(folder / LEXICAL_DIR)


def _raw_lines(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [line.rstrip(b"\n") for line in handle if line.strip()]


def _read_rows(folder: Path, chunk_lines: list[bytes] | None = None) -> list[ChunkRow]:
    """The row list; from the chunk lines (read here unless given) when it cannot be read."""
    try:
        return decode_rows((folder / ROWS_FILE).read_bytes())
    except (OSError, ValueError):
        lines = chunk_lines if chunk_lines is not None else _raw_lines(folder / CHUNKS_FILE)
        return [ChunkRow.of_line(line) for line in lines]


def _fallback_is_safe(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """An old build may stay as a fallback only if every document text it holds is also in the new build."""
    old_texts, new_texts = old.get("document_texts"), new.get("document_texts")
    if not isinstance(old_texts, dict) or not isinstance(new_texts, dict):
        return False
    return all(new_texts.get(doc_id) == digest for doc_id, digest in old_texts.items())


def _prune_builds(settings: Settings, keep: str, previous: Path | None, manifest: dict[str, Any]) -> None:
    for old in settings.index_dir.glob("build-*"):
        if old.name == keep:
            continue
        if previous is not None and old.name == previous.name:
            try:
                old_manifest = read_manifest(old)
            except (OSError, ValueError):
                old_manifest = {}
            if _fallback_is_safe(old_manifest, manifest) and verify_build(old, old_manifest).ok:
                continue
        shutil.rmtree(old, ignore_errors=True)
    remove_stale_working_copies(settings.index_dir)


def document_store(settings: Settings) -> DocumentStore:
    """The configured store of ingested documents (files under ASSISTANT_HOME, or the database)."""
    return DocumentStore.for_settings(settings)


def _upgrade_legacy_records(settings: Settings, store: DocumentStore, say: Callable[[str], None]) -> None:
    if store.has_legacy_records():
        from assistant.index.locks import documents_lock

        with documents_lock(settings):  # the lock ingest takes
            if store.upgrade_records():
                say("以前の形式の登録文書を、個人情報をマスクした形式に更新しました")


def _new_build_id() -> str:
    return f"build-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def chunk_summary(chunks: list[Chunk]) -> dict[str, Any]:
    """The manifest's account of a build's chunks."""
    return {
        "chunks": len(chunks),
        "kinds": _count_kinds(chunks),
        "instruction_like_chunks": sum(1 for c in chunks if c.instruction_like),
        "document_texts": document_texts(chunks),
    }


def changed_summary(old: dict[str, Any], dropped: list[Chunk], added: list[Chunk], doc_ids: set[str]) -> dict[str, Any]:
    """The account of a build after an incremental change, from the previous one (no pass over every chunk)."""
    kinds = Counter(old.get("kinds") or {})
    kinds.subtract(Counter(c.kind for c in dropped))
    kinds.update(Counter(c.kind for c in added))
    flagged = int(old.get("instruction_like_chunks") or 0) - sum(c.instruction_like for c in dropped)
    return {
        "chunks": int(old["chunks"]) - len(dropped) + len(added),
        "kinds": {kind: n for kind, n in kinds.items() if n > 0},
        "instruction_like_chunks": flagged + sum(c.instruction_like for c in added),
        "document_texts": texts_after_change(old, doc_ids, added),
    }


def texts_after_change(old: dict[str, Any], doc_ids: set[str], added: list[Chunk]) -> dict[str, str]:
    """The manifest's document texts once these documents changed (the others as they were)."""
    texts = {k: v for k, v in (old.get("document_texts") or {}).items() if k not in doc_ids}
    texts.update(document_texts(added))
    return dict(sorted(texts.items()))


def build_manifest(
    build_id: str, knowledge: Knowledge, store: DocumentStore, embedder: Embedder, summary: dict[str, Any]
) -> dict[str, Any]:
    """What a build holds, without the file checksums (added when the files are written)."""
    heads = store.record_heads()
    return {
        "format": INDEX_FORMAT,
        "build_id": build_id,
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "documents": len(heads),
        "corpus_hash": knowledge.content_hash,
        "documents_fingerprint": fingerprint_of(heads),
        "embedding_model": embedder.model_id,
        "embedding_dimension": embedder.dimension,
        **summary,
    }


def _publish(settings: Settings, tmp: Path, build_id: str, manifest: dict[str, Any]) -> Path:
    """Seal the build (checksums), rename it into place and point CURRENT at it; prune old builds."""
    manifest["files"] = build_checksums(tmp)
    manifest["stamps"] = build_stamps(tmp, list(manifest["files"]))
    write_json_atomic(tmp / MANIFEST, manifest)
    final = settings.index_dir / build_id
    os.rename(tmp, final)
    previous = current_build_dir(settings)
    pointer = _current_pointer(settings)
    tmp_pointer = pointer.with_name(".CURRENT.tmp")
    tmp_pointer.write_text(build_id, encoding="utf-8")
    os.replace(tmp_pointer, pointer)
    _prune_builds(settings, build_id, previous, manifest)
    return final


def all_chunks(knowledge: Knowledge, store: DocumentStore) -> list[Chunk]:
    chunks = corpus_chunks(knowledge) + store.chunks()
    ids = [c.source_id for c in chunks]
    if len(set(ids)) != len(ids):
        raise IndexError_("チャンク ID が重複しています（corpus を確認してください）")
    return chunks


def build_index(
    settings: Settings,
    knowledge: Knowledge,
    *,
    progress: Callable[[str], None] | None = None,
    _after_stage: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build a complete new index from the corpus and the ingested documents, then publish it."""
    if settings.chroma_url:
        from assistant.index.remote import build_remote

        return build_remote(settings, knowledge, progress=progress)
    settings.ensure_dirs()
    with FileLock(str(settings.index_dir / ".build.lock")):
        return _build_locked(settings, knowledge, progress, _after_stage)


def _build_locked(
    settings: Settings,
    knowledge: Knowledge,
    progress: Callable[[str], None] | None,
    after_stage: Callable[[str], None] | None,
) -> BuildReport:
    say = progress or (lambda _message: None)
    checkpoint = after_stage or (lambda _stage: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    for leftover in settings.index_dir.glob(".building-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    store = document_store(settings)
    _upgrade_legacy_records(settings, store, say)
    chunks = all_chunks(knowledge, store)
    build_id = _new_build_id()
    tmp = settings.index_dir / f".building-{build_id}"
    tmp.mkdir(parents=True)
    try:
        say(f"{len(chunks)} チャンクを解析しています（形態素解析と埋め込みベクトル）")
        t0 = time.perf_counter()
        embedder = get_embedder(settings)
        analysed = analyse_chunks(chunks, settings)
        timings["analyse_seconds"] = time.perf_counter() - t0
        checkpoint("chunks")
        t0 = time.perf_counter()
        say("BM25 索引を作成しています")
        _write_lexical(tmp, chunks, analysed.tokens, LexicalIndex.from_tokens(analysed.tokens))
        timings["bm25_seconds"] = time.perf_counter() - t0
        checkpoint("bm25")
        t0 = time.perf_counter()
        say("ベクトルを Chroma に保存しています")
        _write_chroma(tmp / CHROMA, chunks, analysed.vectors)
        timings["chroma_seconds"] = time.perf_counter() - t0
        checkpoint("chroma")
        say("ファイルのチェックサムを記録しています")
        manifest = build_manifest(build_id, knowledge, store, embedder, chunk_summary(chunks))
        final = _publish(settings, tmp, build_id, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildReport(
        build_id=build_id,
        chunks=len(chunks),
        documents=manifest["documents"],
        seconds=time.perf_counter() - started,
        size_bytes=_folder_size(final),
        timings=timings,
    )


@dataclass
class Prepared:
    """Chunks of changed documents, analysed ahead (by the ingest workers) or not yet."""

    chunks: list[Chunk]
    analysed: Analysed | None = None


def changed_chunks(
    settings: Settings, store: DocumentStore, doc_ids: set[str], prepared: dict[str, Prepared] | None
) -> tuple[list[Chunk], Analysed]:
    """The chunks the changed documents now have (none for a removed one), with tokens and vectors."""
    prepared = prepared or {}
    embedder = get_embedder(settings)
    missing = doc_ids - set(prepared)
    stored = store.chunks_of(missing) if missing else []
    chunks: list[Chunk] = []
    parts: list[Analysed] = []
    for doc_id in sorted(doc_ids & set(prepared)):
        part = prepared[doc_id]
        chunks.extend(part.chunks)
        parts.append(part.analysed or analyse_chunks(part.chunks, settings))
    if stored:
        chunks.extend(stored)
        parts.append(analyse_chunks(stored, settings))
    return chunks, Analysed.joined(parts, embedder.dimension)


def update_index(
    settings: Settings,
    knowledge: Knowledge,
    doc_ids: set[str],
    *,
    prepared: dict[str, Prepared] | None = None,
    progress: Callable[[str], None] | None = None,
    staged: Any = None,
) -> BuildReport:
    """Publish a new index in which only these documents changed (added, replaced or removed).

    Only their chunks are analysed and written to the vector store; the lexical part drops and
    appends rows. The new build is complete, sealed with checksums and published like a full one.
    Without a current build that matches the corpus and the model, a full build is made instead.
    `staged` (assistant.index.staging) holds the vector store with these documents' vectors already
    written; it is used when it was made from the build being updated, else ignored.
    """
    if settings.chroma_url:
        from assistant.index.remote import update_remote

        report = update_remote(settings, knowledge, doc_ids, prepared=prepared, progress=progress)
        return report if report is not None else build_index(settings, knowledge, progress=progress)
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    settings.ensure_dirs()
    with FileLock(str(settings.index_dir / ".build.lock")):
        base = _incremental_base(settings, knowledge)
        if base is None:
            say("差分で更新できる索引がないため、索引全体を作成します")
            return _build_locked(settings, knowledge, progress, None)
        folder, old_manifest = base
        store = document_store(settings)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        new_chunks, analysed = changed_chunks(settings, store, doc_ids, prepared)
        timings["analyse_seconds"] = time.perf_counter() - t0
        # The rows that stay are copied as they are written; only the dropped ones are parsed.
        chunk_lines = _raw_lines(folder / CHUNKS_FILE)
        token_lines = _raw_lines(folder / TOKENS_FILE)
        rows = _read_rows(folder, chunk_lines)
        if not len(rows) == len(chunk_lines) == len(token_lines):
            raise IndexError_(f"索引 {folder.name} の行数が一致しません。`assistant index rebuild` を実行してください")
        dropped = [i for i, row in enumerate(rows) if row.doc_id in doc_ids]
        dropped_set = set(dropped)
        dropped_chunks = [Chunk.from_dict(orjson.loads(chunk_lines[i])) for i in dropped]
        keep = [i for i in range(len(rows)) if i not in dropped_set]
        new_rows = [rows[i] for i in keep] + [ChunkRow.of(c) for c in new_chunks]
        ids = [row.source_id for row in new_rows]
        if len(set(ids)) != len(ids):
            raise IndexError_("チャンク ID が重複しています（corpus を確認してください）")
        build_id = _new_build_id()
        tmp = settings.index_dir / f".building-{build_id}"
        tmp.mkdir(parents=True)
        try:
            say(f"{len(doc_ids)} 件の文書の索引を更新しています（削除 {len(dropped)}、追加 {len(new_chunks)} チャンク）")
            t0 = time.perf_counter()
            lexical = LexicalIndex.load(folder / LEXICAL_DIR).without(dropped).appended(analysed.tokens)
            _write_lines(
                tmp,
                [chunk_lines[i] for i in keep] + [orjson.dumps(c.to_dict()) for c in new_chunks],
                [token_lines[i] for i in keep] + [orjson.dumps(t) for t in analysed.tokens],
                new_rows,
                lexical,
            )
            timings["bm25_seconds"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            used_staged = False
            removed_ids = [rows[i].source_id for i in dropped]
            if staged is not None and staged.fits(folder.name, doc_ids):
                staged.take(tmp / CHROMA)  # the vectors were written while the files were read
                _seal_chroma(tmp / CHROMA, removed_ids)
                used_staged = True
            else:
                _update_chroma_copy(folder, old_manifest, tmp / CHROMA, removed_ids, new_chunks, analysed.vectors)
            timings["chroma_seconds"] = time.perf_counter() - t0
            summary = changed_summary(old_manifest, dropped_chunks, new_chunks, doc_ids)
            manifest = build_manifest(build_id, knowledge, store, get_embedder(settings), summary)
            manifest["based_on"] = old_manifest.get("build_id")
            final = _publish(settings, tmp, build_id, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return BuildReport(
        build_id=build_id,
        chunks=manifest["chunks"],
        documents=manifest["documents"],
        seconds=time.perf_counter() - started,
        size_bytes=_folder_size(final),
        timings=timings,
        incremental=True,
        added_chunks=len(new_chunks),
        removed_chunks=len(dropped),
        staged_vectors=used_staged,
    )


def _incremental_base(settings: Settings, knowledge: Knowledge) -> tuple[Path, dict[str, Any]] | None:
    """The published build, if it verifies and was made from this corpus with this model and format."""
    folder = current_build_dir(settings)
    if folder is None or not folder.is_dir():
        return None
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError):
        return None
    if (
        manifest.get("format") != INDEX_FORMAT
        or manifest.get("corpus_hash") != knowledge.content_hash
        or manifest.get("embedding_model") != get_embedder(settings).model_id
        or not verify_build(folder, manifest).ok
    ):
        return None
    return folder, manifest


def copy_chroma_files(source: Path, manifest: dict[str, Any], target: Path) -> None:
    """Copy the build's Chroma folder to `target`, each file checked against the manifest."""
    prefix = f"{CHROMA}/"
    for name, checksum in sorted((manifest.get("files") or {}).items()):
        if not name.startswith(prefix):
            continue
        if not copy_verified(source / name, target / name[len(prefix):], checksum, manifest, name):
            raise IndexError_(f"索引 {source.name} のファイル {name} が壊れています。`assistant index rebuild` を実行してください")


def _update_chroma_copy(
    source: Path, manifest: dict[str, Any], target: Path, removed_ids: list[str], chunks: list[Chunk], vectors: np.ndarray
) -> None:
    """Copy the build's Chroma files and apply the change to the copy."""
    copy_chroma_files(source, manifest, target)
    client = chroma_client(target)
    try:
        collection = client.get_collection(COLLECTION)
        delete_vectors(collection, removed_ids)
        add_vectors(collection, chunks, vectors)
    finally:
        client.close()
    _seal_chroma(target, removed_ids)


def _seal_chroma(target: Path, removed_ids: list[str]) -> None:
    flush_log(target)
    if removed_ids:
        _purge_deleted_text(target)


def _purge_deleted_text(folder: Path) -> None:
    """Rewrite Chroma's SQLite file so that the text of deleted chunks is not left in free pages or the
    full-text index (a removed document must leave no copy behind)."""
    import sqlite3

    database = folder / "chroma.sqlite3"
    if not database.is_file():
        return
    connection = sqlite3.connect(database)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "embedding_fulltext_search" in tables:
            connection.execute("INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES ('optimize')")
            connection.commit()
        connection.execute("VACUUM")
    finally:
        connection.close()


def _count_kinds(chunks: list[Chunk]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.kind] = counts.get(chunk.kind, 0) + 1
    return counts


def _rebuild_hint(folder: Path, reason: str) -> IndexError_:
    return IndexError_(f"索引 {folder.name} を開けません（{reason}）。`assistant index rebuild` を実行してください")


def _release(client: Any, working_dir: Path) -> None:
    try:
        if client is not None:
            client.close()
    except Exception:  # noqa: BLE001 - at interpreter exit Chroma may already be torn down
        pass
    finally:
        shutil.rmtree(working_dir, ignore_errors=True)


class SearchIndex:
    """An opened, read-only index build, verified against its manifest before any file is read.

    Chroma works on a private copy of the build's Chroma folder (it rewrites the files it opens);
    the copy is deleted by `close()` or when the object is garbage-collected.
    """

    def __init__(self, folder: Path, embedder: Embedder) -> None:
        self.folder = folder
        self.fallback_from: str | None = None
        self.fallback_reason: str | None = None
        try:
            self.manifest: dict[str, Any] = read_manifest(folder)
        except (OSError, ValueError) as exc:
            raise _rebuild_hint(folder, f"manifest.json を読めません: {exc}") from exc
        if self.manifest.get("format") != INDEX_FORMAT:
            raise _rebuild_hint(folder, "索引の形式が古く、ファイルを検証できません")
        if self.manifest.get("embedding_model") != embedder.model_id:
            raise IndexError_("索引の埋め込みモデルが設定と異なります。`assistant index rebuild` を実行してください")
        check = verify_build(folder, self.manifest, skip_prefix="chroma/")
        if not check.ok:
            raise _rebuild_hint(folder, check.describe())
        chroma_path, chroma_check = working_copy(folder, self.manifest)
        if chroma_path is None:
            raise _rebuild_hint(folder, chroma_check.describe())
        self.chroma_path = chroma_path
        self._finalizer = weakref.finalize(self, _release, None, chroma_path.parent)
        try:
            self.chunks = ChunkTable(folder / CHUNKS_FILE, _read_rows(folder))
            self.bm25 = LexicalIndex.load(folder / LEXICAL_DIR)
            client = chroma_client(chroma_path)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _release, client, chroma_path.parent)
            self.collection = client.get_collection(COLLECTION)
        except Exception as exc:  # any damage gets the same clear message
            self.close()
            raise _rebuild_hint(folder, f"{type(exc).__name__}: {exc}") from exc
        if len(self.chunks) != self.manifest.get("chunks") or self.bm25.rows != len(self.chunks):
            self.close()
            raise IndexError_(f"索引 {folder.name} のチャンク数が一致しません。`assistant index rebuild` を実行してください")
        self.embedder = embedder
        self.rows = self.chunks.rows
        self.by_id = self.chunks.by_id
        self.position = self.chunks.position

    @property
    def build_id(self) -> str:
        return str(self.manifest.get("build_id", self.folder.name))

    def close(self) -> None:
        """Release Chroma and delete the working copy (safe to call twice)."""
        self._finalizer()


def _other_builds(settings: Settings, current: Path | None) -> list[Path]:
    """Complete builds other than the current one, newest first."""
    builds = [p for p in settings.index_dir.glob("build-*") if p.is_dir() and (current is None or p.name != current.name)]
    return sorted(builds, key=lambda p: p.name, reverse=True)


def _good_fallback(settings: Settings, current: Path | None, model_id: str | None = None) -> tuple[Path, dict[str, Any]] | None:
    for folder in _other_builds(settings, current):
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError):
            continue
        if manifest.get("format") != INDEX_FORMAT or (model_id and manifest.get("embedding_model") != model_id):
            continue
        if verify_build(folder, manifest).ok:
            return folder, manifest
    return None


def published_stamp(settings: Settings) -> Any:
    """A value that changes whenever a new index is published (cheap: one `stat`, or one query in server mode)."""
    if settings.chroma_url:
        from assistant.index.remote import remote_stamp

        return remote_stamp(settings)
    try:
        info = os.stat(pointer_path(settings))
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def published_build_id(settings: Settings) -> str | None:
    """The id of the published index, as `SearchIndex.build_id` names it."""
    if settings.chroma_url:
        from assistant.index.remote import remote_build_id

        return remote_build_id(settings)
    folder = current_build_dir(settings)
    return folder.name if folder is not None else None


def open_index(settings: Settings, *, fallback: bool = True) -> SearchIndex:
    """Open the published build; if it does not verify, the previous good build (with `fallback_from` set)."""
    if settings.chroma_url:
        from assistant.index.remote import open_remote

        return open_remote(settings)
    folder = current_build_dir(settings)
    if folder is None:
        raise IndexError_("索引がまだありません。`assistant index build` を実行してください")
    embedder = get_embedder(settings)
    remove_stale_working_copies(settings.index_dir)
    try:
        if not folder.is_dir():
            raise IndexError_(f"索引 {folder.name} が見つかりません。`assistant index rebuild` を実行してください")
        return SearchIndex(folder, embedder)
    except IndexError_ as problem:
        found = _good_fallback(settings, folder, embedder.model_id) if fallback else None
        if found is None:
            raise
        index = SearchIndex(found[0], embedder)
        index.fallback_from = folder.name
        index.fallback_reason = str(problem)
        return index


def index_status(settings: Settings, knowledge: Knowledge, *, full: bool = True) -> dict[str, Any]:
    """What is on disk: the published build, checked file by file against its manifest (`full`: every file
    hashed; otherwise only files written since the build was sealed)."""
    folder = current_build_dir(settings)
    if settings.chroma_url:
        from assistant.index.remote import remote_status

        return remote_status(settings, knowledge)
    census = document_store(settings).record_census()
    status: dict[str, Any] = {
        "index_dir": str(settings.index_dir),
        "exists": bool(folder and folder.is_dir()),
        "documents_registered": census.count,
        "damaged_document_records": list(census.damaged),
    }
    if folder is None:
        status["state"] = "missing"
        return status
    fallback = _good_fallback(settings, folder)
    status["fallback_build"] = fallback[0].name if fallback else None
    if not folder.is_dir():
        status.update(state="broken", build_id=folder.name, error=_broken_message(f"索引 {folder.name} のフォルダがありません", fallback))
        return status
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        status.update(state="broken", build_id=folder.name, error=_broken_message(f"manifest.json を読めません（{exc}）", fallback))
        return status
    check = verify_build(folder, manifest, full=full)
    stale = []
    if manifest.get("format") != INDEX_FORMAT or check.unverifiable:
        stale.append("index_format")
    if manifest.get("corpus_hash") != knowledge.content_hash:
        stale.append("corpus")
    if manifest.get("documents_fingerprint") != census.fingerprint:
        stale.append("documents")
    expected_model = CHIVE_MODEL_ID if settings.embedding_model == "chive" else None
    if expected_model and manifest.get("embedding_model") != expected_model:
        stale.append("embedding_model")
    status.update(
        state="stale" if stale else "ready",
        stale_reasons=stale,
        build_id=manifest.get("build_id"),
        built_at=manifest.get("built_at"),
        chunks=manifest.get("chunks"),
        documents=manifest.get("documents"),
        embedding_model=manifest.get("embedding_model"),
        kinds=manifest.get("kinds"),
        size_bytes=_folder_size(folder),
        missing_files=check.missing,
        damaged_files=check.damaged,
        unexpected_files=check.unexpected,
    )
    if check.unverifiable:
        status["error"] = "索引の形式が古く、ファイルを検証できません。`assistant index rebuild` を実行してください"
    elif not check.ok:
        status.update(state="broken", error=_broken_message(check.describe(), fallback))
    return status


def _broken_message(problem: str, fallback: tuple[Path, dict[str, Any]] | None) -> str:
    hint = f"前の索引 {fallback[0].name} で回答します。" if fallback else ""
    return f"{problem}。{hint}`assistant index rebuild` を実行してください"
