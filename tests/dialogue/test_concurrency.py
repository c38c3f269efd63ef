"""Many threads at once, as the web server's workers call the library: no errors, nothing lost or misfiled."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant.dialogue.chat import ChatService

QUESTIONS = [
    "子どもの医療費助成で、住民税の情報を情報連携で照会したいです。届出は必要ですか？",
    "号ずれの修正はどの届出ですか",
    "届出の受付期間はいつですか？",
    "ひとり親家庭の医療費助成は事例の何番ですか",
]


def _hammer(threads: int, calls: int, work) -> Counter:  # noqa: ANN001
    """Run work(thread, call) from `threads` threads started together; count failures by message."""
    failures: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(thread: int) -> None:
        start.wait()
        for call in range(calls):
            try:
                work(thread, call)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                with lock:
                    failures[f"{type(exc).__name__}: {exc}"[:120]] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return failures


def _asks_and_turns(db_assistant, threads: int, calls: int) -> None:  # noqa: ANN001
    chat = ChatService(db_assistant)
    expected = {q: db_assistant.ask(q)["answer"] for q in QUESTIONS}
    answers: list[tuple[str, str]] = []

    def ask(thread: int, call: int) -> None:
        question = QUESTIONS[(thread + call) % len(QUESTIONS)]
        answers.append((question, db_assistant.ask(question)["answer"]))

    assert _hammer(threads, calls, ask) == Counter()
    assert len(answers) == threads * calls
    assert all(answer == expected[question] for question, answer in answers), "threads do not change answers"

    def turn(thread: int, call: int) -> None:
        session = "shared" if thread % 2 else f"own-{thread}"  # half the threads share one session
        chat.turn(session, QUESTIONS[(thread + call) % len(QUESTIONS)])

    assert _hammer(threads, calls, turn) == Counter()
    shared = chat.history("shared")
    assert [t["turn"] for t in shared if t["role"] == "user"] == list(range(1, threads // 2 * calls + 1))
    for thread in range(0, threads, 2):
        assert len(chat.history(f"own-{thread}")) == 2 * calls


def test_concurrent_asks_and_chat_turns_all_succeed(db_assistant) -> None:  # noqa: ANN001
    _asks_and_turns(db_assistant, threads=4, calls=8)


@pytest.mark.slow
def test_eight_threads_fifty_calls_each(db_assistant) -> None:  # noqa: ANN001
    _asks_and_turns(db_assistant, threads=8, calls=50)


def test_concurrent_classification_and_dense_search(db_assistant) -> None:  # noqa: ANN001
    retriever = db_assistant.retriever
    expected_ids = {q: [h.chunk.source_id for h in retriever.search(q)] for q in QUESTIONS}
    expected_cases = {q: db_assistant.classify(q)["candidates"][0]["case"] for q in QUESTIONS}
    mismatches: list[str] = []

    def work(thread: int, call: int) -> None:
        question = QUESTIONS[(thread + call) % len(QUESTIONS)]
        if [h.chunk.source_id for h in retriever.search(question)] != expected_ids[question]:
            mismatches.append(f"search {question}")
        if db_assistant.classify(question)["candidates"][0]["case"] != expected_cases[question]:
            mismatches.append(f"classify {question}")

    assert _hammer(6, 10, work) == Counter()
    assert mismatches == []
