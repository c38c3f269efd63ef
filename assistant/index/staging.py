"""Vectors of a large ingest, written to the vector store while the files are still being read.

Inserting 50,000 vectors into Chroma takes about as long as reading and analysing a fifth of the
documents, and it runs in the calling process while the reading processes work on the other cores.
An ingest therefore copies the published build's Chroma files into a private folder first and adds
each document's vectors there as soon as its record is stored. `update_index` uses that folder when
it still fits (same base build, exactly the documents that changed); otherwise it is deleted and the
update writes the vectors itself, as it always did. The folder is a working copy (`.open/`): one left
by a process that stopped is deleted like the others.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from assistant.chunk import Chunk
from assistant.config import Settings
from assistant.index.integrity import CHROMA, WORKING_COPIES
from assistant.index.store import (
    CHROMA_BATCH,
    COLLECTION,
    IndexError_,
    _incremental_base,
    _read_rows,
    add_vectors,
    chroma_client,
    copy_chroma_files,
    delete_vectors,
)
from assistant.knowledge import Knowledge


class StagedVectors:
    """A private copy of the published build's vector store, with the vectors of changed documents applied."""

    def __init__(self, settings: Settings, knowledge: Knowledge) -> None:
        base = _incremental_base(settings, knowledge)
        if base is None:
            raise IndexError_("差分で更新できる索引がありません")
        folder, manifest = base
        self.base_build = folder.name
        self.root = settings.index_dir / WORKING_COPIES / f"staged-{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.doc_ids: set[str] = set()
        self._base_ids: dict[str, list[str]] = {}
        for row in _read_rows(folder):
            if row.doc_id:
                self._base_ids.setdefault(row.doc_id, []).append(row.source_id)
        self._staged_ids: dict[str, list[str]] = {}
        self._pending: list[tuple[list[Chunk], np.ndarray]] = []
        self._pending_removals: list[str] = []
        self._pending_count = 0
        copy_chroma_files(folder, manifest, self.chroma_dir)
        self._client = chroma_client(self.chroma_dir)
        self._collection = self._client.get_collection(COLLECTION)

    @property
    def chroma_dir(self) -> Path:
        return self.root / CHROMA

    def put(self, doc_id: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """The document's vectors replace whatever the copy held for it (written in batches: one insertion
        per document of a few chunks would cost more than the whole batch)."""
        if doc_id in self._staged_ids:  # the same document again: its earlier vectors go first
            self._flush()
            delete_vectors(self._collection, self._staged_ids[doc_id])
        else:
            self._pending_removals.extend(self._base_ids.get(doc_id, []))
        self._pending.append((chunks, vectors))
        self._pending_count += len(chunks)
        self._staged_ids[doc_id] = [c.source_id for c in chunks]
        self.doc_ids.add(doc_id)
        if self._pending_count >= CHROMA_BATCH:
            self._flush()

    def _flush(self) -> None:
        delete_vectors(self._collection, self._pending_removals)
        if self._pending:
            chunks = [c for part, _vectors in self._pending for c in part]
            add_vectors(self._collection, chunks, np.concatenate([v for _part, v in self._pending]))
        self._pending_removals, self._pending, self._pending_count = [], [], 0

    def fits(self, base_build: str, doc_ids: set[str]) -> bool:
        return self.base_build == base_build and self.doc_ids == doc_ids

    def take(self, target: Path) -> None:
        """Move the copy to `target` (the new build's Chroma folder)."""
        self._flush()
        self._close()
        os.replace(self.chroma_dir, target)
        self.discard()

    def discard(self) -> None:
        self._close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def stage_vectors(settings: Settings, knowledge: Knowledge) -> StagedVectors | None:
    """A staging copy for an ingest into the embedded index, or None (no usable build, or it cannot be copied)."""
    if settings.chroma_url:
        return None
    try:
        return StagedVectors(settings, knowledge)
    except Exception:  # noqa: BLE001 - only a head start: the update then writes the vectors itself
        return None

