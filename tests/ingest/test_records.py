"""The file store's record heads come from a memo keyed by each file's stamp: they always equal the records
without their chunks, a damaged file is reported, and a removed document leaves nothing in the memo."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from assistant.ingest.records import HEADS_MEMO, DatabaseRecords, FileRecords, RecordCensus, fingerprint_of


def _record(doc_id: str, title: str) -> dict:
    return {"doc_id": doc_id, "title": title, "kind": "guidance", "as_of": "2025-04-01", "content_hash": doc_id * 4,
            "chunks": [{"source_id": f"doc-{doc_id}-0001", "text": f"{title}の本文"}]}


def _without_chunks(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "chunks"} for r in records]


def test_heads_follow_every_change_of_the_files(tmp_path: Path) -> None:
    store = FileRecords(tmp_path / "documents")
    for n in range(3):
        store.put(_record(f"d{n}", f"手引{n}"))
    heads, damaged = store.heads()
    assert heads == _without_chunks(store.all()) and damaged == []
    assert (store.folder / HEADS_MEMO).is_file()

    store.put(_record("d1", "改訂した手引"))  # rewritten: a new file, a new stamp
    (store.folder / "d2.json").write_text("{壊れた", encoding="utf-8")
    heads, damaged = store.heads()
    assert [h["title"] for h in heads] == ["手引0", "改訂した手引"] and damaged == ["d2.json"]
    assert heads == _without_chunks(store.all())

    (store.folder / HEADS_MEMO).write_text("not json", encoding="utf-8")  # a damaged memo is only rebuilt
    assert store.heads()[0] == heads


def test_the_census_counts_and_fingerprints_the_readable_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileRecords(tmp_path / "documents")
    for n in range(3):
        store.put(_record(f"d{n}", f"手引{n}"))
    (store.folder / "d9.json").write_text("{壊れた", encoding="utf-8")
    census = store.census()
    heads, damaged = store.heads()
    assert census == RecordCensus(3, fingerprint_of(heads), ("d9.json",))

    monkeypatch.setattr(FileRecords, "_entries", lambda self: pytest.fail("the heads were read although no file changed"))
    assert store.census() == census
    monkeypatch.undo()

    store.put(_record("d1", "改訂した手引"))  # a changed title changes the fingerprint
    changed = store.census()
    assert changed.count == 3 and changed.fingerprint != census.fingerprint
    assert changed.fingerprint == fingerprint_of(store.heads()[0])
    store.delete("d0")
    assert store.census().count == 2


def test_the_database_census_equals_the_one_of_its_heads(tmp_path: Path) -> None:
    store = DatabaseRecords(f"sqlite:///{tmp_path / 'records.db'}")
    for n in range(7):
        store.put(_record(f"d{n}", f"手引{n}"))
    heads, damaged = store.heads()
    assert store.census() == RecordCensus(7, fingerprint_of(heads), ())
    from sqlalchemy import insert

    from assistant.ingest.records import documents_table

    with store.engine.begin() as connection:  # written by something else: not JSON, or not an object
        connection.execute(insert(documents_table), [{"doc_id": "x1", "record": "{壊れた", "updated_at": dt.datetime(2026, 12, 1)},
                                                     {"doc_id": "x2", "record": "[1, 2]", "updated_at": dt.datetime(2026, 12, 1)}])
    assert store.census() == RecordCensus(7, fingerprint_of(heads), ("x1", "x2"))
    assert store.heads() == (heads, ["x1", "x2"])


def test_a_removed_document_leaves_no_trace_in_the_memo(tmp_path: Path) -> None:
    store = FileRecords(tmp_path / "documents")
    store.put(_record("d0", "さくら町の手引"))
    store.put(_record("d1", "みなと町の手引"))
    store.heads()
    assert store.delete("d0")["title"] == "さくら町の手引"
    memo = json.loads((store.folder / HEADS_MEMO).read_text(encoding="utf-8"))
    assert "さくら町" not in json.dumps(memo, ensure_ascii=False) and list(memo) == ["d1.json"]


def test_a_group_commit_flushes_its_records_once_at_the_end(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import os

    store = FileRecords(tmp_path / "documents")
    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushed.append(fd), real_fsync(fd))[1])
    store.put(_record("solo", "単独の手引"))
    assert len(flushed) == 1, "a record on its own is flushed before it is renamed into place"
    flushed.clear()
    with store.group_commit():
        for n in range(5):
            store.put(_record(f"g{n}", f"手引{n}"))
        with store.group_commit():  # nested: the outer block decides
            store.put(_record("inner", "内側の手引"))
        assert flushed == [] and len(store.all()) == 7, "written and readable, not yet flushed"
    assert len(flushed) == 6 + 1, "each record of the block, then the folder"
    flushed.clear()
    store.put(_record("after", "後の手引"))
    assert len(flushed) == 1, "after the block, each record is flushed again"


def test_a_long_group_commit_flushes_in_groups_and_every_record_once(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import os

    import assistant.ingest.records as records

    monkeypatch.setattr(records, "FLUSH_GROUP", 3)
    store = FileRecords(tmp_path / "documents")
    flushed: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushed.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1])
    with store.group_commit():
        for n in range(8):
            store.put(_record(f"g{n}", f"手引{n}"))
    folder = str(store.folder)
    files = sorted(name for name in flushed if name != folder)
    assert files == sorted(str(store.folder / f"g{n}.json") for n in range(8)), "each record flushed, once"
    assert flushed.count(folder) == 3, "the folder after each group of three, and after the rest"
