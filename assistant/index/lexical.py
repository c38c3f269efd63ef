"""The lexical (BM25) part of the index, which can take and drop documents without a rebuild.

bm25s precomputes one score per (chunk, term) from the corpus-wide statistics, so adding one
document means indexing everything again. Here the index keeps raw term counts (a sparse
chunk × term matrix) and computes the same Lucene-variant BM25 as bm25s at query time, from the
document frequencies and lengths of the chunks it holds: appending rows or dropping them is an
array operation, and the scores equal a fresh bm25s index of the same token lists
(tests/index/test_lexical.py compares them).

Saved in one folder as `vocab.index.json` (term → column) and one .npy file per array: the row view
(CSR, for updates) and the column view with the corpus statistics (for scoring). A loaded index maps
the arrays from disk, so a query reads the columns of its terms only, and the workers that serve the
same build share those pages instead of each holding its own copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from assistant.index.arrays import mapped

VOCAB_FILE = "vocab.index.json"
ROW_ARRAYS = ("indptr", "indices", "counts")
COLUMN_ARRAYS = ("col_ptr", "col_rows", "col_counts", "norm", "idf")
EMPTY_TOKEN = "[空]"  # a chunk without content words still needs one term
K1 = 1.5
B = 0.75


class LexicalIndex:
    """Term counts of the indexed chunks, row i = chunk i; BM25 scores computed per query."""

    def __init__(self, vocab: dict[str, int], indptr: np.ndarray, indices: np.ndarray, counts: np.ndarray) -> None:
        self.vocab_dict = vocab
        self.indptr = indptr.astype(np.int64, copy=False)
        self.indices = indices.astype(np.int32, copy=False)
        self.counts = counts.astype(np.float32, copy=False)
        self._prepared = False  # the column view is made on the first query (an update builds several indexes)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> "LexicalIndex":
        return cls({}, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32))

    @classmethod
    def from_tokens(cls, token_lists: Iterable[Sequence[str]]) -> "LexicalIndex":
        index = cls.empty()
        return index.appended(list(token_lists))

    def appended(self, token_lists: Sequence[Sequence[str]]) -> "LexicalIndex":
        """A new index with these chunks added after the existing rows (new terms get new columns, numbered
        in order of first appearance)."""
        return self.appended_batches([token_lists])

    def appended_batches(self, batches: Iterable[Sequence[Sequence[str]]]) -> "LexicalIndex":
        """As `appended` with the chunks of all batches in order, each batch counted on its own and the arrays
        joined once: only one batch's token lists need to be in memory at a time."""
        vocab = dict(self.vocab_dict)
        parts = [_counted(lists, vocab) for lists in batches if lists]
        if not parts:
            return self
        added_ptr = np.cumsum(np.concatenate([terms for terms, _, _ in parts]), dtype=np.int64) + self.indptr[-1]
        return LexicalIndex(
            vocab,
            np.concatenate([self.indptr, added_ptr]),
            np.concatenate([self.indices, *(columns for _, columns, _ in parts)]),
            np.concatenate([self.counts, *(counts for _, _, counts in parts)]),
        )

    def without(self, rows: Iterable[int]) -> "LexicalIndex":
        """A new index without these rows (the others keep their order). Unused terms stay in the vocabulary."""
        drop = np.zeros(self.rows, dtype=bool)
        drop[list(rows)] = True
        if not drop.any():
            return self
        lengths = np.diff(self.indptr)
        keep_entries = np.repeat(~drop, lengths)
        kept_lengths = lengths[~drop]
        return LexicalIndex(
            self.vocab_dict,
            np.concatenate([[0], np.cumsum(kept_lengths)]).astype(np.int64),
            self.indices[keep_entries],
            self.counts[keep_entries],
        )

    # -- scoring --------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def prepare(self) -> None:
        """Column view and corpus statistics for scoring."""
        if self._prepared:
            return
        rows = self.rows
        n_terms = len(self.vocab_dict)
        row_of_entry = np.repeat(np.arange(rows, dtype=np.int32), np.diff(self.indptr))
        lengths = np.bincount(row_of_entry, weights=self.counts, minlength=rows).astype(np.float32)
        average = float(lengths.mean()) if rows else 1.0
        norm = (K1 * ((1 - B) + B * lengths / (average or 1.0))).astype(np.float32)
        order = np.argsort(self.indices, kind="stable")
        col_ptr = np.concatenate([[0], np.cumsum(np.bincount(self.indices, minlength=n_terms))]).astype(np.int64)
        df = np.diff(col_ptr).astype(np.float64)
        with np.errstate(divide="ignore"):
            idf = np.where(df > 0, np.log(1 + (rows - df + 0.5) / (df + 0.5)), 0.0).astype(np.float32)
        self._set_columns(col_ptr=col_ptr, col_rows=row_of_entry[order], col_counts=self.counts[order], norm=norm, idf=idf)

    def _set_columns(self, *, col_ptr: np.ndarray, col_rows: np.ndarray, col_counts: np.ndarray, norm: np.ndarray,
                     idf: np.ndarray) -> None:
        self._col_ptr, self._col_rows, self._col_counts, self._norm, self._idf = col_ptr, col_rows, col_counts, norm, idf
        self._prepared = True

    def _columns(self) -> dict[str, np.ndarray]:
        self.prepare()
        return {"col_ptr": self._col_ptr, "col_rows": self._col_rows, "col_counts": self._col_counts,
                "norm": self._norm, "idf": self._idf}

    def get_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the query tokens (each occurrence counts, as in bm25s)."""
        self.prepare()
        scores = np.zeros(self.rows, dtype=np.float32)
        for token in tokens:
            column = self.vocab_dict.get(token)
            if column is None:
                continue
            start, end = self._col_ptr[column], self._col_ptr[column + 1]
            if start == end:
                continue
            rows = self._col_rows[start:end]
            tf = self._col_counts[start:end]
            scores[rows] += self._idf[column] * tf / (tf + self._norm[rows])
        return scores

    # -- files ----------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / VOCAB_FILE).write_text(json.dumps(self.vocab_dict, ensure_ascii=False), encoding="utf-8")
        arrays = {"indptr": self.indptr, "indices": self.indices, "counts": self.counts, **self._columns()}
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", np.ascontiguousarray(array))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """The index of a saved folder, its arrays mapped read-only. Only their shapes are checked here (reading
        every entry would bring the whole index into memory); damaged content is found by the build's checksums."""
        vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        if not isinstance(vocab, dict):
            raise ValueError(f"{VOCAB_FILE} is not an object")
        arrays = {name: mapped(folder / f"{name}.npy") for name in (*ROW_ARRAYS, *COLUMN_ARRAYS)}
        index = cls(vocab, arrays["indptr"], arrays["indices"], arrays["counts"])
        rows, entries = index.rows, len(index.indices)
        consistent = (
            len(index.counts) == entries == len(arrays["col_rows"]) == len(arrays["col_counts"])
            and int(index.indptr[-1]) == entries
            and len(arrays["col_ptr"]) == len(vocab) + 1 and int(arrays["col_ptr"][-1]) == entries
            and len(arrays["norm"]) == rows and len(arrays["idf"]) == len(vocab)
        )
        if not consistent:
            raise ValueError("the saved arrays do not fit together")
        index._set_columns(**{name: arrays[name] for name in COLUMN_ARRAYS})
        return index


def _counted(token_lists: Sequence[Sequence[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(number of distinct terms per chunk, their columns, their counts) of these chunks; new terms are added
    to `vocab`. The counting is one sort of (row, column) keys: a counter per chunk took seconds for 50,000
    chunks."""
    lists = [tokens or [EMPTY_TOKEN] for tokens in token_lists]
    columns = np.fromiter((vocab.setdefault(term, len(vocab)) for tokens in lists for term in tokens), dtype=np.int64)
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    width = len(vocab)
    keys = np.repeat(np.arange(len(lists), dtype=np.int64), lengths) * width + columns
    unique_keys, counts = np.unique(keys, return_counts=True)  # sorted: by row, then by column
    terms_per_row = np.bincount(unique_keys // width, minlength=len(lists))
    return terms_per_row, (unique_keys % width).astype(np.int32), counts.astype(np.float32)
