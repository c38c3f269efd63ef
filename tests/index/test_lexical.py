"""The incremental lexical index scores exactly as a fresh bm25s index of the same token lists."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest

from assistant.index.lexical import LexicalIndex

WORDS = ["届出", "変更", "中止", "事務", "医療費", "助成", "一人親", "子供", "住民税", "照会", "提供", "条例", "番号"]


def _corpus(seed: int, n: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(1, 30))] for _ in range(n)]


def _bm25s_scores(corpus: list[list[str]], query: list[str]) -> np.ndarray:
    reference = bm25s.BM25()
    reference.index(corpus, show_progress=False)
    known = [t for t in query if t in reference.vocab_dict]
    return np.asarray(reference.get_scores(known), dtype=np.float32) if known else np.zeros(len(corpus), np.float32)


@pytest.mark.parametrize("query", [["届出"], ["医療費", "助成", "助成"], ["照会", "未知の語"], ["一人親", "子供", "番号", "条例"]])
def test_scores_equal_a_fresh_bm25s_index(query: list[str]) -> None:
    corpus = _corpus(1, 300)
    ours = LexicalIndex.from_tokens(corpus).get_scores(query)
    assert np.allclose(ours, _bm25s_scores(corpus, query), rtol=1e-4, atol=1e-5)


def test_appending_and_dropping_rows_equals_indexing_the_result_afresh(tmp_path) -> None:  # noqa: ANN001
    corpus = _corpus(2, 200)
    added = _corpus(3, 25)
    index = LexicalIndex.from_tokens(corpus)
    dropped = set(range(40, 60)) | {0, 199}
    changed = index.without(dropped).appended(added)
    expected_corpus = [t for i, t in enumerate(corpus) if i not in dropped] + added
    query = ["届出", "変更", "事務", "住民税"]
    assert changed.rows == len(expected_corpus)
    assert np.allclose(changed.get_scores(query), _bm25s_scores(expected_corpus, query), rtol=1e-4, atol=1e-5)
    changed.save(tmp_path / "lex")
    reloaded = LexicalIndex.load(tmp_path / "lex")
    assert np.array_equal(reloaded.get_scores(query), changed.get_scores(query))


def test_chunks_counted_in_batches_give_the_index_of_all_of_them() -> None:
    corpus = _corpus(4, 230) + [[]]
    whole = LexicalIndex.from_tokens(corpus)
    batched = LexicalIndex.empty().appended_batches(iter([corpus[:100], [], corpus[100:101], corpus[101:]]))
    assert batched.vocab_dict == whole.vocab_dict
    for name in ("indptr", "indices", "counts"):
        assert np.array_equal(getattr(batched, name), getattr(whole, name))
    assert LexicalIndex.empty().appended_batches(iter([])).rows == 0


def test_a_chunk_without_tokens_still_has_a_row() -> None:
    index = LexicalIndex.from_tokens([[], ["届出"]])
    assert index.rows == 2
    assert index.get_scores(["届出"])[0] == 0 and index.get_scores(["届出"])[1] > 0


def test_a_saved_index_is_mapped_from_disk_and_scores_as_before(tmp_path) -> None:  # noqa: ANN001
    index = LexicalIndex.from_tokens(_corpus(4, 120))
    index.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert isinstance(loaded.indices.base, np.memmap), "the arrays are read from disk as they are needed"
    for query in (["届出"], ["医療費", "助成"], ["未知の語"]):
        assert np.array_equal(loaded.get_scores(query), index.get_scores(query))
    again = loaded.appended(_corpus(5, 3))  # an update starts from a mapped index
    assert again.rows == 123 and again.indices.base is None


def test_arrays_that_do_not_fit_together_are_refused(tmp_path) -> None:  # noqa: ANN001
    LexicalIndex.from_tokens(_corpus(6, 50)).save(tmp_path / "lex")
    np.save(tmp_path / "lex" / "norm.npy", np.ones(7, dtype=np.float32))  # another index's row statistics
    with pytest.raises(ValueError):
        LexicalIndex.load(tmp_path / "lex")
