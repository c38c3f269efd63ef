"""Per-call latency of the shared tokenizer under threads: one tokenizer per thread vs one behind a lock.

Run: PYTHONPATH=. .venv/bin/python benchmarks/tokenizer_threads.py [--calls 400]
Prints mean / p50 / p95 per-call latency (ms) and calls per second for 1, 2, 4 and 8 threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.index.tokenizer import JapaneseTokenizer  # noqa: E402

TEXT = "子ども医療費助成事務で住民税の情報を情報連携で照会したいです。ひとり親家庭の医療費助成も対象ですか？"


class LockedTokenizer(JapaneseTokenizer):
    """The alternative design: one Sudachi tokenizer object, one call at a time."""

    def __init__(self) -> None:
        super().__init__()
        self._single = self._dictionary.create()
        self._lock = threading.Lock()

    @property
    def _tokenizer(self):  # noqa: ANN202
        return self._single

    def morphemes(self, text: str) -> list[tuple[str, list[str]]]:
        with self._lock:
            return super().morphemes(text)


def measure(tokenizer: JapaneseTokenizer, threads: int, calls: int) -> dict[str, float]:
    latencies: list[float] = []
    record = threading.Lock()

    def work() -> None:
        mine = []
        for _ in range(calls):
            started = time.perf_counter()
            tokenizer.tokens(TEXT)
            mine.append(time.perf_counter() - started)
        with record:
            latencies.extend(mine)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)] * 1000, 3),
        "calls_per_s": round(threads * calls / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400, help="calls per thread")
    args = parser.parse_args()
    designs = {"thread_local": JapaneseTokenizer(), "lock": LockedTokenizer()}
    for tokenizer in designs.values():
        tokenizer.tokens(TEXT)  # warm up
    report = {
        name: {threads: measure(tokenizer, threads, args.calls) for threads in (1, 2, 4, 8)}
        for name, tokenizer in designs.items()
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
