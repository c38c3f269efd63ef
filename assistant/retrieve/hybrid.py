"""Fuse BM25 and dense scores after per-retriever normalisation.

Plain reciprocal-rank fusion lost to the better single retriever in our measurements, so scores
are normalised per query (BM25 by its maximum, cosine by min-max over the candidate pool) and
combined with weights from the configuration (measured in eval/).
"""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from assistant.chunk import Chunk
from assistant.index.store import SearchIndex
from assistant.index.tokenizer import get_tokenizer
from assistant.index.chunk_table import ChunkRow
from assistant.ingest.docstore import SCOPE_MUNICIPALITY


MASKS_KEPT = 64  # filters differ by kind, confidence, dates and the asking municipality


@dataclass(frozen=True)
class Audience:
    """Whom an answer is for: a municipal officer sees public material and their own municipality's only."""

    municipality: str | None = None  # None: an officer whose municipality is not recorded (public material only)


# The audience of the answer being worked out in this context (None: everything, e.g. local use without login).
_AUDIENCE: contextvars.ContextVar[Audience | None] = contextvars.ContextVar("retrieval_audience", default=None)


@contextmanager
def answering_for(audience: Audience | None) -> Iterator[None]:
    """Searches made inside this block leave out material the audience may not see."""
    token = _AUDIENCE.set(audience)
    try:
        yield
    finally:
        _AUDIENCE.reset(token)


def current_audience() -> Audience | None:
    return _AUDIENCE.get()


@dataclass(frozen=True)
class Filters:
    kinds: tuple[str, ...] = ()
    confidence: str | None = None
    as_of_from: str | None = None
    as_of_to: str | None = None
    audience: Audience | None = None

    def mask(self, columns: "ChunkColumns") -> np.ndarray:
        """Which chunks pass, one flag per chunk: the audience may see it (public material, or its own
        municipality's), and it has one of the kinds, the confidence and an as-of date within the range."""
        mask = np.ones(columns.size, dtype=bool)
        if self.audience is not None:
            own = columns.owner == self.audience.municipality if self.audience.municipality is not None else False
            mask &= (columns.scope != SCOPE_MUNICIPALITY) | own
        if self.kinds:
            mask &= np.isin(columns.kind, list(self.kinds))
        if self.confidence:
            mask &= columns.confidence == self.confidence
        if self.as_of_from:
            mask &= columns.as_of >= self.as_of_from
        if self.as_of_to:
            mask &= columns.as_of <= self.as_of_to
        return mask

    def chroma_where(self) -> dict | None:
        clauses: list[dict] = []
        if self.kinds:
            clauses.append({"kind": {"$in": list(self.kinds)}})
        if self.confidence:
            clauses.append({"confidence": self.confidence})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class ChunkColumns:
    """The attributes filters look at, one array per attribute, row i = chunk i."""

    kind: np.ndarray
    confidence: np.ndarray
    as_of: np.ndarray
    scope: np.ndarray
    owner: np.ndarray

    @property
    def size(self) -> int:
        return len(self.kind)

    @classmethod
    def of(cls, rows: Sequence[ChunkRow]) -> "ChunkColumns":
        return cls(
            kind=np.array([r.kind for r in rows], dtype=str),
            confidence=np.array([r.confidence for r in rows], dtype=str),
            as_of=np.array([r.as_of for r in rows], dtype=str),
            scope=np.array([r.scope for r in rows], dtype=str),
            owner=np.array([r.municipality or "" for r in rows], dtype=object),
        )


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    bm25: float
    dense: float


class HybridRetriever:
    def __init__(
        self,
        index: SearchIndex,
        *,
        bm25_weight: float = 0.8,
        dense_weight: float = 0.2,
        pool: int = 40,
        reranker: "Reranker | None" = None,
    ) -> None:
        self.index = index
        self.bm25_weight = bm25_weight
        self.dense_weight = dense_weight
        self.pool = pool
        self.reranker = reranker
        self._masks: OrderedDict[Filters, np.ndarray] = OrderedDict()
        self._masks_lock = threading.Lock()
        self._columns: ChunkColumns | None = None

    def allowed(self, filters: Filters) -> np.ndarray:
        """Which chunks the filters let through, one flag per chunk, from the chunks' attributes as arrays
        (a loop over 50,000 chunks per query took most of its time); the last masks are kept."""
        with self._masks_lock:
            mask = self._masks.get(filters)
            if mask is not None:
                self._masks.move_to_end(filters)
                return mask
        mask = filters.mask(self.columns)
        with self._masks_lock:
            self._masks[filters] = mask
            while len(self._masks) > MASKS_KEPT:
                self._masks.popitem(last=False)
        return mask

    @property
    def columns(self) -> "ChunkColumns":
        if self._columns is None:
            self._columns = ChunkColumns.of(self.index.rows)
        return self._columns

    def bm25_scores(self, query: str) -> np.ndarray:
        tokens = get_tokenizer().tokens(query)
        if not tokens:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.asarray(self.index.bm25.get_scores(tokens), dtype=np.float32)

    def dense_scores(self, query: str, filters: Filters, n: int) -> dict[str, float]:
        vector = self.index.embedder.encode([query], is_query=True)
        result = self.index.collection.query(
            query_embeddings=vector,
            n_results=max(1, min(n, len(self.index.chunks))),
            where=filters.chroma_where(),
            include=["distances"],
        )
        return {sid: 1.0 - float(d) for sid, d in zip(result["ids"][0], result["distances"][0])}

    def search(self, query: str, k: int = 8, filters: Filters | None = None, mode: str = "hybrid") -> list[Hit]:
        filters = filters or Filters()
        if filters.audience is None and current_audience() is not None:
            filters = replace(filters, audience=current_audience())
        chunks = self.index.chunks
        allowed = self.allowed(filters)
        bm25 = np.where(allowed, self.bm25_scores(query), 0.0) if mode != "dense" else np.zeros(len(chunks))
        dense = self.dense_scores(query, filters, self.pool) if mode != "bm25" else {}
        # A vector the served build does not hold (a server index changed since this worker loaded it) is skipped.
        dense = {sid: s for sid, s in dense.items() if sid in self.index.position and allowed[self.index.position[sid]]}
        top_bm25 = np.argsort(-bm25)[: self.pool]
        pool = {int(i) for i in top_bm25 if bm25[i] > 0}
        pool |= {self.index.position[sid] for sid in dense}
        if not pool:
            return []
        bm25_max = float(bm25.max()) or 1.0
        dense_values = list(dense.values())
        d_min, d_max = (min(dense_values), max(dense_values)) if dense_values else (0.0, 1.0)
        span = (d_max - d_min) or 1.0
        hits = []
        for position in pool:
            chunk = chunks[position]
            b = float(bm25[position]) / bm25_max
            d_raw = dense.get(chunk.source_id)
            d = (d_raw - d_min) / span if d_raw is not None else 0.0
            if mode == "bm25":
                score = b
            elif mode == "dense":
                score = d
            else:
                score = self.bm25_weight * b + self.dense_weight * d
            hits.append(Hit(chunk=chunk, score=score, bm25=b, dense=d))
        # Newer sources lead on equal scores.
        hits.sort(key=lambda h: (round(h.score, 6), h.chunk.as_of), reverse=True)
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits[: max(k * 3, 20)])
        return hits[:k]


class Reranker:
    """Second stage with a local cross-encoder model directory (optional)."""

    def __init__(self, model_dir: str) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(model_dir, device="cpu", local_files_only=True)
        self._lock = threading.Lock()  # its fast tokenizer serves one thread at a time

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        with self._lock:
            scores = self.model.predict([(query, h.chunk.text) for h in hits], show_progress_bar=False)
        order = np.argsort(-np.asarray(scores))
        return [Hit(hits[i].chunk, float(scores[i]), hits[i].bm25, hits[i].dense) for i in order]
