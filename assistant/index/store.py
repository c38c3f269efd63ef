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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from filelock import FileLock

from assistant.chunk import Chunk
from assistant.config import Settings
from assistant.index.embeddings import CHIVE_MODEL_ID, Embedder, get_embedder
from assistant.index.integrity import (
    MANIFEST,
    BuildCheck,
    build_checksums,
    remove_stale_working_copies,
    verify_build,
    working_copy,
)
from assistant.index.tokenizer import get_tokenizer
from assistant.ingest.docstore import DocumentStore, write_json_atomic
from assistant.knowledge import Knowledge
from assistant.knowledge.chunks import corpus_chunks

COLLECTION = "chunks"
CHROMA_BATCH = 1000
# 2: the manifest lists the checksums of the build's files and the text digest of each document.
INDEX_FORMAT = 2


class IndexError_(RuntimeError):
    """The index is missing or damaged; the message says what to run."""


def chroma_client(path: Path):  # noqa: ANN201 - chromadb types are heavy to import eagerly
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))


def documents_fingerprint(store: DocumentStore) -> str:
    digest = hashlib.sha256()
    for record in store.records():
        digest.update(
            f"{record['doc_id']}:{record['content_hash']}:{record['kind']}:{record['as_of']}:{record['title']}:"
            f"{record.get('official', False)}:{record.get('format')}".encode()
        )
        if "scope" in record:  # who the document answers, and how sure it is, are in its chunks too
            digest.update(f":{record['scope']}:{record.get('municipality')}:{record.get('confidence')}".encode())
    return digest.hexdigest()[:16]


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


def index_text(chunk: Chunk) -> str:
    """What BM25 and the dense model see: the title helps short passages."""
    return f"{chunk.title}\n{chunk.text}"


@dataclass
class BuildReport:
    build_id: str
    chunks: int
    documents: int
    seconds: float
    size_bytes: int
    timings: dict[str, float] = field(default_factory=dict)


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


def _write_chroma(folder: Path, chunks: list[Chunk], vectors: np.ndarray) -> None:
    client = chroma_client(folder)
    try:
        collection = client.create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        for start in range(0, len(chunks), CHROMA_BATCH):
            batch = chunks[start : start + CHROMA_BATCH]
            collection.add(
                ids=[c.source_id for c in batch],
                embeddings=vectors[start : start + len(batch)],
                metadatas=[
                    {"kind": c.kind, "as_of": c.as_of, "confidence": c.confidence, "origin": c.origin, "title": c.title,
                     "instruction_like": c.instruction_like}
                    for c in batch
                ],
                documents=[c.text for c in batch],
            )
    finally:
        client.close()  # everything on disk before the checksums are taken


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


def build_index(
    settings: Settings,
    knowledge: Knowledge,
    *,
    progress: Callable[[str], None] | None = None,
    _after_stage: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build a complete new index from the corpus and the ingested documents, then publish it."""
    settings.ensure_dirs()
    say = progress or (lambda _message: None)
    checkpoint = _after_stage or (lambda _stage: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with FileLock(str(settings.index_dir / ".build.lock")):
        for leftover in settings.index_dir.glob(".building-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        store = DocumentStore(settings.documents_dir, settings.corpus_dir)
        if store.has_legacy_records():
            with FileLock(str(settings.home / ".documents.lock"), timeout=120):  # the lock ingest takes
                if store.upgrade_records():
                    say("以前の形式の登録文書を、個人情報をマスクした形式に更新しました")
        chunks = corpus_chunks(knowledge) + store.chunks()
        ids = [c.source_id for c in chunks]
        if len(set(ids)) != len(ids):
            raise IndexError_("チャンク ID が重複しています（corpus を確認してください）")
        build_id = f"build-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        tmp = settings.index_dir / f".building-{build_id}"
        tmp.mkdir(parents=True)
        try:
            say(f"{len(chunks)} チャンクを書き出しています")
            with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as handle:
                for chunk in chunks:
                    handle.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
            checkpoint("chunks")
            t0 = time.perf_counter()
            say("BM25 索引を作成しています")
            tokenizer = get_tokenizer()
            corpus_tokens = [tokenizer.tokens(index_text(c)) or ["[空]"] for c in chunks]
            bm25 = bm25s.BM25()
            bm25.index(corpus_tokens, show_progress=False)
            bm25.save(str(tmp / "bm25"))
            timings["bm25_seconds"] = time.perf_counter() - t0
            checkpoint("bm25")
            t0 = time.perf_counter()
            say("埋め込みベクトルを計算しています")
            embedder = get_embedder(settings)
            vectors = embedder.encode([index_text(c) for c in chunks], is_query=False)
            timings["embed_seconds"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            say("ベクトルを Chroma に保存しています")
            _write_chroma(tmp / "chroma", chunks, vectors)
            timings["chroma_seconds"] = time.perf_counter() - t0
            checkpoint("chroma")
            say("ファイルのチェックサムを記録しています")
            manifest = {
                "format": INDEX_FORMAT,
                "build_id": build_id,
                "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "chunks": len(chunks),
                "documents": len(store.records()),
                "corpus_hash": knowledge.content_hash,
                "documents_fingerprint": documents_fingerprint(store),
                "embedding_model": embedder.model_id,
                "embedding_dimension": embedder.dimension,
                "kinds": _count_kinds(chunks),
                "instruction_like_chunks": sum(1 for c in chunks if c.instruction_like),
                "document_texts": document_texts(chunks),
                "files": build_checksums(tmp),
            }
            write_json_atomic(tmp / MANIFEST, manifest)
            final = settings.index_dir / build_id
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        previous = current_build_dir(settings)
        pointer = _current_pointer(settings)
        tmp_pointer = pointer.with_name(".CURRENT.tmp")
        tmp_pointer.write_text(build_id, encoding="utf-8")
        os.replace(tmp_pointer, pointer)
        _prune_builds(settings, build_id, previous, manifest)
    return BuildReport(
        build_id=build_id,
        chunks=len(chunks),
        documents=manifest["documents"],
        seconds=time.perf_counter() - started,
        size_bytes=_folder_size(final),
        timings=timings,
    )


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
            with (folder / "chunks.jsonl").open(encoding="utf-8") as handle:
                self.chunks = [Chunk.from_dict(json.loads(line)) for line in handle if line.strip()]
            self.bm25 = bm25s.BM25.load(str(folder / "bm25"))
            client = chroma_client(chroma_path)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _release, client, chroma_path.parent)
            self.collection = client.get_collection(COLLECTION)
        except Exception as exc:  # any damage gets the same clear message
            self.close()
            raise _rebuild_hint(folder, f"{type(exc).__name__}: {exc}") from exc
        if len(self.chunks) != self.manifest.get("chunks"):
            self.close()
            raise IndexError_(f"索引 {folder.name} のチャンク数が一致しません。`assistant index rebuild` を実行してください")
        self.embedder = embedder
        self.by_id = {c.source_id: c for c in self.chunks}
        self.position = {c.source_id: i for i, c in enumerate(self.chunks)}

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


def open_index(settings: Settings, *, fallback: bool = True) -> SearchIndex:
    """Open the published build; if it does not verify, the previous good build (with `fallback_from` set)."""
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


def index_status(settings: Settings, knowledge: Knowledge) -> dict[str, Any]:
    """What is on disk: the published build, checked file by file against its manifest."""
    folder = current_build_dir(settings)
    store = DocumentStore(settings.documents_dir, settings.corpus_dir)
    status: dict[str, Any] = {
        "index_dir": str(settings.index_dir),
        "exists": bool(folder and folder.is_dir()),
        "documents_registered": len(store.records()),
        "damaged_document_records": store.damaged_records(),
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
    check = verify_build(folder, manifest)
    stale = []
    if manifest.get("format") != INDEX_FORMAT or check.unverifiable:
        stale.append("index_format")
    if manifest.get("corpus_hash") != knowledge.content_hash:
        stale.append("corpus")
    if manifest.get("documents_fingerprint") != documents_fingerprint(store):
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
