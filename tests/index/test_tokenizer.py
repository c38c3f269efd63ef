"""The shared Sudachi tokenizer: normalised tokens, and safe to call from many threads at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from assistant.index.tokenizer import get_tokenizer

TEXTS = [
    "子ども医療費助成事務で住民税の情報を照会したい。",
    "ひとり親家庭等医療費助成事務の届出は変更に当たりますか？",
    "障がい者福祉の独自利用事務について、号ずれの修正は差替えで足ります。",
]


def test_compounds_yield_their_parts_and_variants_are_folded() -> None:
    tokens = get_tokenizer().tokens("ひとり親家庭の子ども")
    assert "一人" in tokens and "家庭" in tokens
    assert "子供" in tokens


def test_threads_calling_tokens_at_once_all_succeed_with_the_same_results() -> None:
    tokenizer = get_tokenizer()
    expected = [tokenizer.tokens(text) for text in TEXTS]
    start = threading.Barrier(8)

    def work(worker: int) -> list[str]:
        start.wait()
        problems = []
        for call in range(100):
            index = (worker + call) % len(TEXTS)
            try:
                if tokenizer.tokens(TEXTS[index]) != expected[index]:
                    problems.append("different tokens")
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                problems.append(f"{type(exc).__name__}: {exc}")
        return problems

    with ThreadPoolExecutor(8) as pool:
        problems = [p for batch in pool.map(work, range(8)) for p in batch]
    assert problems == []


def test_one_tokenizer_per_process_even_when_threads_ask_first_at_once() -> None:
    with ThreadPoolExecutor(8) as pool:
        instances = set(map(id, pool.map(lambda _: get_tokenizer(), range(32))))
    assert instances == {id(get_tokenizer())}
