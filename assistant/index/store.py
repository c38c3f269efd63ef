"""Atomic index builds and opening the current index.

A build is written to a hidden temporary folder, renamed to `build-…` when complete and only
then published by replacing the `CURRENT` pointer file. A failed or killed build leaves the
previous index answering; leftovers are cleaned by the next build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
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
from assistant.index.tokenizer import get_tokenizer
from assistant.ingest.docstore import DocumentStore, write_json_atomic
from assistant.knowledge import Knowledge
from assistant.knowledge.chunks import corpus_chunks

COLLECTION = "chunks"
CHROMA_BATCH = 1000
INDEX_FORMAT = 1


class IndexError_(RuntimeError):
    """The index is missing or damaged; the message says what to run."""


def chroma_client(path: Path):  # noqa: ANN201 - chromadb types are heavy to import eagerly
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))


def documents_fingerprint(store: DocumentStore) -> str:
    digest = hashlib.sha256()
    for record in store.records():
        digest.update(f"{record['doc_id']}:{record['content_hash']}:{record['kind']}:{record['as_of']}:{record['title']}".encode())
    return digest.hexdigest()[:16]


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


def current_build_dir(settings: Settings) -> Path | None:
    pointer = _current_pointer(settings)
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    return settings.index_dir / name if name else None


def _write_chroma(folder: Path, chunks: list[Chunk], vectors: np.ndarray) -> None:
    client = chroma_client(folder)
    collection = client.create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    for start in range(0, len(chunks), CHROMA_BATCH):
        batch = chunks[start : start + CHROMA_BATCH]
        collection.add(
            ids=[c.source_id for c in batch],
            embeddings=vectors[start : start + len(batch)],
            metadatas=[
                {"kind": c.kind, "as_of": c.as_of, "confidence": c.confidence, "origin": c.origin, "title": c.title}
                for c in batch
            ],
            documents=[c.text for c in batch],
        )


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
        store = DocumentStore(settings.documents_dir)
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
            }
            write_json_atomic(tmp / "manifest.json", manifest)
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
        keep = {build_id, previous.name if previous else ""}
        for old in settings.index_dir.glob("build-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
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


class SearchIndex:
    """An opened, read-only index build."""

    def __init__(self, folder: Path, embedder: Embedder) -> None:
        self.folder = folder
        try:
            self.manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            with (folder / "chunks.jsonl").open(encoding="utf-8") as handle:
                self.chunks = [Chunk.from_dict(json.loads(line)) for line in handle if line.strip()]
            self.bm25 = bm25s.BM25.load(str(folder / "bm25"))
            self.collection = chroma_client(folder / "chroma").get_collection(COLLECTION)
        except Exception as exc:  # any damage gets the same clear message
            raise IndexError_(
                f"索引 {folder.name} を開けません（{type(exc).__name__}: {exc}）。`assistant index rebuild` を実行してください"
            ) from exc
        if len(self.chunks) != self.manifest.get("chunks"):
            raise IndexError_(f"索引 {folder.name} のチャンク数が一致しません。`assistant index rebuild` を実行してください")
        if self.manifest.get("embedding_model") != embedder.model_id:
            raise IndexError_("索引の埋め込みモデルが設定と異なります。`assistant index rebuild` を実行してください")
        self.embedder = embedder
        self.by_id = {c.source_id: c for c in self.chunks}
        self.position = {c.source_id: i for i, c in enumerate(self.chunks)}


def open_index(settings: Settings) -> SearchIndex:
    folder = current_build_dir(settings)
    if folder is None:
        raise IndexError_("索引がまだありません。`assistant index build` を実行してください")
    if not folder.is_dir():
        raise IndexError_(f"索引 {folder.name} が見つかりません。`assistant index rebuild` を実行してください")
    return SearchIndex(folder, get_embedder(settings))


def index_status(settings: Settings, knowledge: Knowledge) -> dict[str, Any]:
    folder = current_build_dir(settings)
    store = DocumentStore(settings.documents_dir)
    status: dict[str, Any] = {
        "index_dir": str(settings.index_dir),
        "exists": bool(folder and folder.is_dir()),
        "documents_registered": len(store.records()),
        "damaged_document_records": store.damaged_records(),
    }
    if not status["exists"]:
        status["state"] = "missing"
        return status
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        status.update(state="broken", error=str(exc))
        return status
    stale = []
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
    )
    return status
