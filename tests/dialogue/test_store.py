"""The dialogue database: WAL mode, atomic writes, nothing lost when a process is killed, damage refused."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.dialogue import store as store_module
from assistant.dialogue.store import (
    DatabaseUnavailable,
    DialogueStore,
    SessionConflict,
    StoreError,
    dispose_engines,
    validate_session_id,
)
from assistant.validation import InputError, ServiceError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dialogue.db"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(db: Path) -> None:
    store = DialogueStore(f"sqlite:///{db}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert db.exists()


def test_exchanges_are_numbered_and_persist(db: Path) -> None:
    url = f"sqlite:///{db}"
    store = DialogueStore(url)
    assert store.add_exchange("chat", "s1", "質問1", "回答1", {"answer": "回答1"}, {"n": 1}) == 1
    assert store.add_exchange("chat", "s1", "質問2", "回答2", {"answer": "回答2"}, {"n": 2}) == 2
    assert store.add_exchange("chat", "other", "質問", "回答", {}, {}) == 1
    dispose_engines()
    reopened = DialogueStore(url)
    turns = reopened.turns("chat", "s1")
    assert [(t.turn, t.role) for t in turns] == [(1, "user"), (1, "assistant"), (2, "user"), (2, "assistant")]
    assert turns[3].result == {"answer": "回答2", "turn": 2}
    assert reopened.load_session("chat", "s1").state == {"n": 2}
    assert reopened.load_session("checklist", "s1") is None


def test_checklist_answers_and_feedback(db: Path) -> None:
    store = DialogueStore(f"sqlite:///{db}")
    store.add_checklist_answer("c1", "prep-budget", "はい", "済", {"cursor": 3})
    store.add_feedback("c1", 1, -1, "理由が足りない")
    assert [(a.step, a.status) for a in store.checklist_answers("c1")] == [("prep-budget", "済")]
    assert store.load_session("checklist", "c1").state == {"cursor": 3}
    assert [(f.turn, f.rating, f.comment) for f in store.feedback("c1")] == [(1, -1, "理由が足りない")]
    assert [s.session_id for s in store.list_sessions("checklist")] == ["c1"]


def test_session_ids_are_validated() -> None:
    assert validate_session_id(" abc ") == "abc"
    for bad in ("", "   ", "x" * 500, "a\x00b", None, "../x"):
        with pytest.raises(InputError):
            validate_session_id(bad)  # type: ignore[arg-type]
    assert issubclass(StoreError, InputError) and issubclass(SessionConflict, StoreError)
    assert issubclass(DatabaseUnavailable, ServiceError)


def test_a_killed_process_loses_nothing_it_committed(db: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from assistant.dialogue.store import DialogueStore
        store = DialogueStore({f"sqlite:///{db}"!r})
        store.add_checklist_answer("k1", "prep-ordinance", "はい", "済", {{"cursor": 1}})
        store.add_checklist_answer("k1", "prep-budget", "いいえ", "未", {{"cursor": 2}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT)})
    assert completed.returncode != 0  # killed
    with sqlite3.connect(db) as connection:  # a plain reader sees both answers (WAL replayed)
        rows = connection.execute("SELECT step, status FROM checklist_answers ORDER BY id").fetchall()
    assert rows == [("prep-ordinance", "済"), ("prep-budget", "未")]
    assert DialogueStore(f"sqlite:///{db}").load_session("checklist", "k1").state == {"cursor": 2}


def test_two_stores_on_one_file_share_turn_numbers(db: Path) -> None:
    url = f"sqlite:///{db}"
    first, second = DialogueStore(url), DialogueStore(url)
    numbers = [first.add_exchange("chat", "s", "q", "a", {}, {}), second.add_exchange("chat", "s", "q", "a", {}, {})]
    assert numbers == [1, 2]


def test_a_write_based_on_an_outdated_read_is_refused(db: Path) -> None:
    store = DialogueStore(f"sqlite:///{db}")
    store.save_state("checklist", "c", {"n": 1})
    with pytest.raises(SessionConflict):  # expected: not created yet, but it is
        store.save_state("checklist", "c", {"n": 2}, expected_revision=None)
    read = store.load_session("checklist", "c")
    store.save_state("checklist", "c", {"n": 2}, expected_revision=read.revision)
    with pytest.raises(SessionConflict, match="記録していません"):
        store.add_exchange("checklist", "c", "q", "a", {}, {"n": 3}, expected_revision=read.revision)
    assert store.load_session("checklist", "c").state == {"n": 2} and store.turns("checklist", "c") == []


# -- a damaged database is refused, never replaced ------------------------------------------------
def _history(db: Path) -> str:
    url = f"sqlite:///{db}"
    store = DialogueStore(url)
    for number in range(60):
        store.add_exchange("chat", "kept", f"質問{number}" * 20, f"回答{number}" * 40, {}, {"n": number})
    dispose_engines()
    return url


def _assert_refused(url: str, db: Path, *words: str) -> None:
    before = db.read_bytes()
    with pytest.raises(DatabaseUnavailable) as caught:
        DialogueStore(url)
    message = str(caught.value)
    assert all(w in message for w in words), message
    assert db.read_bytes() == before, "the damaged file was left as it was"


def test_a_garbage_file_is_refused_with_the_file_named(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(os.urandom(8192))
    _assert_refused(f"sqlite:///{db}", db, str(db), "壊れて", "退避")


def test_a_truncated_file_is_refused(db: Path) -> None:
    url = _history(db)
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    _assert_refused(url, db, str(db), "壊れて")


def test_a_missing_history_table_is_refused_not_recreated(db: Path) -> None:
    url = _history(db)
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE dialogue_turns")
    with pytest.raises(DatabaseUnavailable, match="dialogue_turns"):
        DialogueStore(url)
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "dialogue_turns" not in tables and "dialogue_sessions" in tables


def test_a_refused_database_opens_once_it_is_repaired(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database" * 100)
    with pytest.raises(DatabaseUnavailable):
        DialogueStore(f"sqlite:///{db}")
    db.rename(db.with_suffix(".damaged"))  # what the message tells the user to do
    assert DialogueStore(f"sqlite:///{db}").turns("chat", "x") == []


def test_a_locked_database_gives_a_clear_message(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)
    url = f"sqlite:///{db}"
    store = DialogueStore(url)
    store.save_state("chat", "s", {"n": 1})
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnavailable, match="ロック") as caught:
            store.save_state("chat", "s", {"n": 2})
        assert str(db) in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.save_state("chat", "s", {"n": 3})
    assert store.load_session("chat", "s").state == {"n": 3}
