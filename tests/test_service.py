"""The running Assistant follows index builds published by another process, keeps answering while it
switches, tells what it serves apart from what is on disk, and says so when it must build first."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.index.store import build_index, current_build_dir
from assistant.knowledge import load_knowledge
from assistant.service import Assistant

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NEW_PHRASE = "さくらんぼ町独自給付金"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"ASSISTANT_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, timeout=600)


def _document(settings, text: str = f"# {NEW_PHRASE}の手引\n{NEW_PHRASE}は町が独自に支給する給付金です。\n") -> Path:  # noqa: ANN001
    path = settings.home / "tebiki.md"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def served(settings):  # noqa: ANN001, ANN201
    build_index(settings, load_knowledge(settings.corpus_dir))
    assistant = Assistant(settings)
    assistant.warm_up()
    return assistant


def test_an_ingest_by_the_cli_reaches_the_running_assistant(served) -> None:  # noqa: ANN001
    settings = served.settings
    before = current_build_dir(settings).name
    ingested = _cli(settings.home, "ingest", str(_document(settings)), "--as-of", "2025-04-01", "--json")
    assert ingested.returncode == 0, ingested.stderr
    hits = served.retriever.search(NEW_PHRASE, k=3)
    assert any(NEW_PHRASE in h.chunk.text for h in hits), "the new document is answered without a restart"
    assert served.served_index()["build_id"] == current_build_dir(settings).name != before

    removed = _cli(settings.home, "ingest", str(_document(settings)), "--remove", "--json")
    assert removed.returncode == 0, removed.stderr
    assert not any(NEW_PHRASE in c.text for c in served.index.chunks), "a removed document leaves the running app"
    gc.collect()
    copies = list((settings.index_dir / ".open").iterdir())
    assert [p.name.split(".")[0] for p in copies] == [served.index.build_id], "old working copies are deleted"
    assert not any(NEW_PHRASE.encode() in f.read_bytes() for p in copies for f in p.rglob("*") if f.is_file())


def test_what_is_served_and_what_is_on_disk_are_reported_apart(served) -> None:  # noqa: ANN001
    settings = served.settings
    old = served.served_index()["build_id"]
    new = build_index(settings, load_knowledge(settings.corpus_dir)).build_id
    report = served.index_report()
    assert report["served"]["build_id"] == old and report["disk"]["build_id"] == new and not report["in_sync"]
    assert report["served"]["chunks"] == len(served._served.index.chunks)
    _ = served.index  # the next request switches
    report = served.index_report()
    assert report["served"]["build_id"] == new and report["in_sync"]


def test_an_unchanged_pointer_is_not_read_again(served, monkeypatch) -> None:  # noqa: ANN001
    import assistant.index.store as store

    def must_not_be_called(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the pointer was read although it did not change")

    monkeypatch.setattr(store, "current_build_dir", must_not_be_called)
    monkeypatch.setattr(store, "open_index", must_not_be_called)
    for _ in range(50):
        assert served.index.chunks


def test_requests_keep_answering_from_the_old_index_while_the_new_one_loads(served, monkeypatch) -> None:  # noqa: ANN001
    settings = served.settings
    old = served.served_index()["build_id"]
    loading = threading.Event()
    original_open = Assistant._open

    def slow_open(self):  # noqa: ANN001, ANN202
        loading.set()
        time.sleep(1.5)
        return original_open(self)

    monkeypatch.setattr(Assistant, "_open", slow_open)
    new = build_index(settings, load_knowledge(settings.corpus_dir)).build_id
    errors: list[BaseException] = []
    answered_during_load: list[str] = []

    # Requests here avoid the tokenizer: only the switch is under test, not concurrent tokenizing.
    def switcher() -> None:
        try:
            served.source("case-10")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=switcher)
    thread.start()
    assert loading.wait(30)
    while thread.is_alive():
        started = time.monotonic()
        try:
            shown = served.source("case-10")
            build = served.index.build_id
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            break
        assert shown["text"] and time.monotonic() - started < 1.0, "a request waited for the load"
        if thread.is_alive():
            answered_during_load.append(build)
    thread.join()
    assert not errors
    # While the new build loaded, answers came from the old one; the switch may complete just before the
    # loading thread ends, so the last answers can already be new, but never old again after new.
    assert answered_during_load and answered_during_load[0] == old and set(answered_during_load) <= {old, new}
    first_new = answered_during_load.index(new) if new in answered_during_load else len(answered_during_load)
    assert set(answered_during_load[first_new:]) <= {new}
    assert served.index.build_id == new


def test_first_use_build_is_announced_with_progress(settings) -> None:  # noqa: ANN001
    messages: list[str] = []
    Assistant(settings, progress=messages.append).warm_up()
    assert messages[0].startswith("索引がまだないため、作成します")
    assert any("BM25" in m for m in messages) and messages[-1].startswith("索引を作成しました")


@pytest.mark.slow
def test_the_first_ask_after_a_killed_ingest_says_it_rebuilds(settings) -> None:  # noqa: ANN001
    """A killed ingest leaves the document registered but not indexed; the next ask rebuilds, and says so."""
    build_index(settings, load_knowledge(settings.corpus_dir))
    assert _cli(settings.home, "ingest", str(_document(settings)), "--no-index").returncode == 0
    asked = _cli(settings.home, "ask", f"{NEW_PHRASE}の届出について")
    assert asked.returncode == 0, asked.stderr
    lines = [line for line in asked.stderr.splitlines() if line.startswith("… ")]
    assert lines and "索引が古いため（登録文書が変わった）" in lines[0]
    assert any("埋め込みベクトル" in line for line in lines) and "索引を作成しました" in lines[-1]
    assert "索引が古いため" not in asked.stdout


def test_warming_up_in_the_background_loads_once_while_requests_come_in(settings) -> None:  # noqa: ANN001
    build_index(settings, load_knowledge(settings.corpus_dir))
    assistant = Assistant(settings)
    errors: list[Exception] = []
    thread = assistant.warm_up_in_background(on_error=errors.append)
    answer = assistant.ask("届出書の差替えはどのようなときに使いますか")  # waits for the same components
    thread.join(timeout=120)
    assert not thread.is_alive() and errors == []
    assert answer["citations"] and assistant.answerer is assistant.answerer


def test_a_failed_background_warm_up_is_reported(settings) -> None:  # noqa: ANN001
    assistant = Assistant(settings, auto_build=False)  # no index, and not allowed to build one
    errors: list[Exception] = []
    assistant.warm_up_in_background(on_error=errors.append).join(timeout=60)
    assert len(errors) == 1 and "索引" in str(errors[0])
