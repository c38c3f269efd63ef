"""TF-IDF features of the reader at answer time, without scikit-learn.

Training fits scikit-learn's `TfidfVectorizer`s (assistant/understand/fitting.py); what answering needs of
each is kept here: its analyzer, its vocabulary and its idf weights. `transform` gives the same matrix
as the fitted vectorizer (sublinear tf, idf, L2 per vectorizer); a test checks both agree. Answering then
imports only numpy (the rows are kept in CSR form here; scipy's import alone took a fifth of a second at
start), and a model loads from plain arrays instead of a pickle.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.advise.matching import fold

CHAR = "char"
WORD = "word"
_WHITE_SPACES = re.compile(r"\s\s+")


@dataclass(frozen=True)
class SparseRows:
    """Feature rows in CSR form (row r holds `data[indptr[r]:indptr[r + 1]]` at those `indices`)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    columns: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indptr) - 1, self.columns

    @property
    def nnz(self) -> int:
        return len(self.data)

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """The rows times a dense (columns, k) matrix."""
        out = np.zeros((self.shape[0], weights.shape[1]), dtype=np.float32)
        for row in range(self.shape[0]):
            start, end = self.indptr[row], self.indptr[row + 1]
            if end > start:
                out[row] = self.data[start:end] @ weights[self.indices[start:end]]
        return out

    def toarray(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=np.float32)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        dense[rows, self.indices] = self.data
        return dense

    def to_scipy(self):  # noqa: ANN201 - for training and tests, which have scipy anyway
        from scipy import sparse

        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    @staticmethod
    def side_by_side(blocks: Sequence["SparseRows"]) -> "SparseRows":
        """The blocks' columns one after the other, row by row (scipy's hstack)."""
        offsets = np.cumsum([0, *(b.columns for b in blocks)])
        rows = blocks[0].shape[0]
        indptr, indices, data = [0], [], []
        for row in range(rows):
            count = 0
            for block, offset in zip(blocks, offsets):
                start, end = block.indptr[row], block.indptr[row + 1]
                indices.append(block.indices[start:end] + offset)
                data.append(block.data[start:end])
                count += end - start
            indptr.append(indptr[-1] + count)
        return SparseRows(
            np.asarray(indptr, dtype=np.int64),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
            np.concatenate(data).astype(np.float32) if data else np.zeros(0, dtype=np.float32),
            int(offsets[-1]),
        )


def fold_for_reader(text: str) -> str:
    return fold(text)


def word_tokens(text: str) -> list[str]:
    from assistant.index.tokenizer import get_tokenizer

    return get_tokenizer().words(text)


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    text = _WHITE_SPACES.sub(" ", text)
    return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]


def word_ngrams(tokens: Sequence[str], low: int, high: int) -> list[str]:
    return [" ".join(tokens[i : i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


@dataclass(frozen=True)
class TextFeatures:
    """One fitted TF-IDF vectorizer: character n-grams or Sudachi word n-grams of the folded text."""

    analyzer: str  # CHAR | WORD
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray  # (terms,)

    @property
    def size(self) -> int:
        return len(self.idf)

    def terms(self, text: str) -> list[str]:
        folded = fold_for_reader(text)
        low, high = self.ngram_range
        if self.analyzer == CHAR:
            return char_ngrams(folded, low, high)
        return word_ngrams(word_tokens(folded), low, high)

    def transform(self, texts: Iterable[str]) -> "SparseRows":
        indptr, indices, values = [0], [], []
        for text in texts:
            counts = Counter(self.vocabulary[t] for t in self.terms(text) if t in self.vocabulary)
            columns = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
            weights = (1.0 + np.log([counts[c] for c in columns])) * self.idf[columns] if len(columns) else np.zeros(0)
            norm = float(np.sqrt(np.dot(weights, weights)))
            indices.append(columns)
            values.append(weights / norm if norm > 0 else weights)
            indptr.append(indptr[-1] + len(columns))
        data = np.concatenate(values).astype(np.float32) if values else np.zeros(0, dtype=np.float32)
        index = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
        return SparseRows(np.asarray(indptr, dtype=np.int64), index, data, self.size)

    @classmethod
    def from_vectorizer(cls, vectorizer: object) -> "TextFeatures":
        """What answering needs of a fitted scikit-learn `TfidfVectorizer`."""
        analyzer = CHAR if vectorizer.analyzer == "char" else WORD  # type: ignore[attr-defined]
        vocabulary = {str(term): int(column) for term, column in vectorizer.vocabulary_.items()}  # type: ignore[attr-defined]
        return cls(analyzer, tuple(vectorizer.ngram_range), vocabulary, np.asarray(vectorizer.idf_, dtype=np.float64))  # type: ignore[attr-defined]

    # -- stored as plain arrays --------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        ordered = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            f"{prefix}analyzer": np.array(self.analyzer),
            f"{prefix}ngram_range": np.array(self.ngram_range, dtype=np.int64),
            f"{prefix}terms": np.array(ordered, dtype=str),
            f"{prefix}idf": self.idf,
        }

    @classmethod
    def from_arrays(cls, arrays: object, prefix: str) -> "TextFeatures":
        terms = arrays[f"{prefix}terms"].tolist()  # type: ignore[index]
        low, high = (int(x) for x in arrays[f"{prefix}ngram_range"])  # type: ignore[index]
        return cls(str(arrays[f"{prefix}analyzer"]), (low, high), {t: i for i, t in enumerate(terms)},  # type: ignore[index]
                   np.asarray(arrays[f"{prefix}idf"], dtype=np.float64))  # type: ignore[index]
