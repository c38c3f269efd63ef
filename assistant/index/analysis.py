"""Text analysis for indexing: BM25 tokens and passage vectors, from one tokenisation per chunk.

Sudachi is the slow step (about 1 MB of text per second and core). The built-in chiVe model looks
its words up in the same morphemes BM25 uses, so each chunk is tokenised once. Large batches are
split over worker processes (one per core); small ones stay in the calling process.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

from assistant.chunk import Chunk
from assistant.index.embeddings import ChiveEmbedder, Embedder, get_embedder
from assistant.index.tokenizer import get_tokenizer

PARALLEL_FROM_CHARS = 2_000_000  # below this, starting worker processes costs more than it saves
BATCH_CHUNKS = 2_000


def index_text(chunk: Chunk) -> str:
    """What BM25 and the dense model see: the title helps short passages."""
    return f"{chunk.title}\n{chunk.text}"


@dataclass
class Analysed:
    """BM25 tokens and passage vectors of chunks, in their order."""

    tokens: list[list[str]]
    vectors: np.ndarray

    @classmethod
    def empty(cls, dimension: int) -> "Analysed":
        return cls([], np.zeros((0, dimension), dtype=np.float32))

    @classmethod
    def joined(cls, parts: list["Analysed"], dimension: int) -> "Analysed":
        """The parts one after the other, copied once (stacking part by part copied the growing matrix
        once per document: quadratic, and most of the time of a large ingest)."""
        if not parts:
            return cls.empty(dimension)
        return cls([t for part in parts for t in part.tokens], np.concatenate([part.vectors for part in parts]))


def analyse_texts(texts: list[str], embedder: Embedder) -> Analysed:
    tokenizer = get_tokenizer()
    if isinstance(embedder, ChiveEmbedder):
        analysed = [tokenizer.morphemes(text) for text in texts]
        tokens = [[word for form, parts in m for word in (form, *parts)] for m in analysed]
        return Analysed(tokens, embedder.encode_morphemes(analysed))
    return Analysed([tokenizer.tokens(text) for text in texts], embedder.encode(texts, is_query=False))


def _worker_analyse(texts: list[str], settings: Any) -> Analysed:
    return analyse_texts(texts, get_embedder(settings))


def analyse_chunks(chunks: list[Chunk], settings: Any, *, workers: int | None = None) -> Analysed:
    """Tokens and vectors of the chunks; in parallel processes when there is enough text to gain."""
    embedder = get_embedder(settings)
    texts = [index_text(c) for c in chunks]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if workers <= 1 or sum(map(len, texts)) < PARALLEL_FROM_CHARS:
        return analyse_texts(texts, embedder)
    batches = [texts[i : i + BATCH_CHUNKS] for i in range(0, len(texts), BATCH_CHUNKS)]
    # forkserver: a clean child even when the caller runs threads (the web app).
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
        parts = list(pool.map(_worker_analyse, batches, [settings] * len(batches)))
    return Analysed.joined(parts, embedder.dimension)
