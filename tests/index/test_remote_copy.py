"""A worker serving the index on servers writes the published build to files of its own, once per version, from
the copy of the version before when it has one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, update

from assistant.chunk import Chunk
from assistant.config import load_settings
from assistant.index.chunk_table import ChunkRow, ChunkTable, decode_rows
from assistant.index.lexical import LexicalIndex
from assistant.index.remote import (
    CURRENT,
    LOCAL_COPIES,
    _engine,
    _local_copy,
    _open_published_copy,
    _published_copy,
    _rows,
    index_chunks,
    index_state,
)


def _chunk(n: int) -> Chunk:
    return Chunk(source_id=f"doc-{n:04d}", title=f"資料{n}", locator=f"{n} ページ", text=f"届出の本文{n}。",
                 kind="guidance", as_of="2025-04-01", confidence="要確認", origin="upload",
                 meta={"doc_id": f"d{n // 2}", **({"scope": "municipality", "municipality": "みなと町"} if n % 5 == 0 else {})})


def _tokens(n: int) -> list[str]:
    return ["届出", f"語{n % 7}", f"語{n % 3}"] + (["変更"] if n % 2 else [])


@pytest.fixture
def published(tmp_path: Path):
    settings = load_settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'servers.db'}")
    settings.ensure_dirs()
    engine = _engine(settings)
    from assistant.index.remote import metadata

    metadata.create_all(engine)
    chunks = [_chunk(n) for n in range(2500)]  # more than one batch read from the database
    rows = _rows("b1", chunks, [_tokens(n) for n in range(2500)], 0)
    rows.reverse()  # stored out of order; the copy follows the positions
    with engine.begin() as connection:
        connection.execute(insert(index_chunks), rows)
        connection.execute(insert(index_state).values(name=CURRENT, build_id="b1", version=1, collection="chunks-b1",
                                                      manifest="{}", updated_at=dt.datetime(2026, 12, 1)))
    return settings, chunks


def test_the_copy_holds_the_published_chunks_rows_and_bm25(published) -> None:  # noqa: ANN001
    settings, chunks = published
    row, folder = _local_copy(settings)
    assert (row.build_id, row.version) == ("b1", 1) and folder.name == "b1@1"
    rows = decode_rows((folder / "rows.json").read_bytes())
    assert rows == [ChunkRow.of(c) for c in chunks]
    assert list(ChunkTable(folder / "chunks.jsonl", rows)) == chunks
    copied, expected = LexicalIndex.load(folder / "bm25"), LexicalIndex.from_tokens([_tokens(n) for n in range(2500)])
    for query in (["届出"], ["語3", "変更"], ["ない語"]):
        assert np.allclose(copied.get_scores(query), expected.get_scores(query))


def _same_copy(left: Path, right: Path) -> None:
    rows = decode_rows((left / "rows.json").read_bytes())
    assert rows == decode_rows((right / "rows.json").read_bytes())
    assert (left / "chunks.jsonl").read_bytes() == (right / "chunks.jsonl").read_bytes()
    assert np.array_equal(np.load(left / "positions.npy"), np.load(right / "positions.npy"))
    ours, theirs = LexicalIndex.load(left / "bm25"), LexicalIndex.load(right / "bm25")
    for query in (["届出"], ["語3", "変更"], ["語5", "追加"]):
        assert np.allclose(ours.get_scores(query), theirs.get_scores(query))


def test_a_new_version_of_the_build_is_copied_from_the_earlier_copy(published, tmp_path: Path,  # noqa: ANN001
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    settings, chunks = published
    _row, first = _local_copy(settings)
    written = (first / "rows.json").stat().st_mtime_ns
    assert _local_copy(settings)[1] == first and (first / "rows.json").stat().st_mtime_ns == written
    replaced = Chunk.from_dict(chunks[7].to_dict() | {"text": "差し替えた本文。"})
    with _engine(settings).begin() as connection:  # as an update does: rows deleted, new ones after the last
        connection.execute(index_chunks.delete().where(index_chunks.c.source_id.in_(["doc-0001", "doc-0007"])))
        connection.execute(insert(index_chunks), _rows("b1", [_chunk(3000), replaced], [["追加", "語5"], ["届出"]], 2500))
        connection.execute(update(index_state).values(version=2))
    import assistant.index.remote as remote

    monkeypatch.setattr(remote, "_copy_all", lambda *_args: pytest.fail("the earlier copy was not used"))
    row, second = _local_copy(settings)
    monkeypatch.undo()
    assert second.name == "b1@2" and not first.exists()
    assert sorted(p.name for p in (settings.index_dir / LOCAL_COPIES).iterdir()) == [".lock", "b1@2"]
    ids = [r.source_id for r in decode_rows((second / "rows.json").read_bytes())]
    assert "doc-0001" not in ids and ids[-2:] == ["doc-3000", "doc-0007"] and len(ids) == 2500
    fresh = load_settings(home=tmp_path / "other-home", database_url=settings.database_url)
    _same_copy(second, _local_copy(fresh)[1])  # equals a copy made from nothing


@pytest.mark.parametrize("damage", ["positions.npy", "bm25/idf.npy", "bm25/indptr.npy", "chunks.jsonl"])
def test_an_earlier_copy_that_does_not_fit_is_not_used(published, damage: str) -> None:  # noqa: ANN001
    settings, _chunks = published
    _row, first = _local_copy(settings)
    if damage == "bm25/indptr.npy":  # one row more than the copy has chunks
        np.save(first / damage, np.append(np.load(first / damage), np.load(first / damage)[-1]))
    elif damage == "chunks.jsonl":
        (first / damage).write_bytes(b"")
    else:
        (first / damage).write_bytes(b"" if damage.endswith("idf.npy") else b"damaged")
    with _engine(settings).begin() as connection:
        connection.execute(update(index_state).values(version=2))
    _row, second = _local_copy(settings)
    fresh = load_settings(home=settings.home.parent / "other-home", database_url=settings.database_url)
    _same_copy(second, _local_copy(fresh)[1])


def test_nothing_published_gives_no_copy(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'servers.db'}")
    from assistant.index.remote import metadata

    metadata.create_all(_engine(settings))
    assert _local_copy(settings) == (None, None)


def test_a_missing_copy_is_written_by_a_process_of_its_own(published, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    settings, chunks = published
    row, missing = _local_copy(settings, write=False)
    assert row.version == 1 and missing is None
    import assistant.index.remote as remote

    monkeypatch.setattr(remote, "_write_local_copy", lambda *_args: pytest.fail("written by the worker itself"))
    row, folder = _published_copy(settings)
    assert folder == settings.index_dir / LOCAL_COPIES / "b1@1"
    assert len(decode_rows((folder / "rows.json").read_bytes())) == len(chunks)
    assert _published_copy(settings) == (row, folder)  # found, nothing written again


def test_a_version_with_mostly_new_rows_is_copied_afresh(published, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    settings, _chunks = published
    _local_copy(settings)
    with _engine(settings).begin() as connection:
        connection.execute(index_chunks.delete().where(index_chunks.c.position < 2000))
        connection.execute(insert(index_chunks), _rows("b1", [_chunk(n) for n in range(3000, 4000)],
                                                       [["追加"]] * 1000, 2500))
        connection.execute(update(index_state).values(version=2))
    import assistant.index.remote as remote

    streamed, copy_all = [], remote._copy_all
    monkeypatch.setattr(remote, "_copy_all", lambda *args: (streamed.append(True), copy_all(*args)))
    assert len(decode_rows((_local_copy(settings)[1] / "rows.json").read_bytes())) == 1500
    assert streamed, "mostly new rows are streamed in one pass, not fetched by id"


@pytest.mark.parametrize("damage", ["rows.json", "bm25/col_ptr.npy", "chunks.jsonl"])
def test_a_damaged_copy_is_written_again(published, damage: str) -> None:  # noqa: ANN001
    settings, chunks = published
    _row, folder = _local_copy(settings)
    (folder / damage).write_bytes(b"{" if damage == "rows.json" else b"")
    row, opened, table, bm25 = _open_published_copy(settings)
    assert opened == folder and len(table) == len(chunks) == bm25.rows and table[5] == chunks[5]
    table.close()


def test_leftovers_are_removed_and_newer_copies_kept(published) -> None:  # noqa: ANN001
    settings, _chunks = published
    root = settings.index_dir / LOCAL_COPIES
    (root / ".writing-b1@1-999-abc").mkdir(parents=True)  # a writer killed half-way
    (root / ".writing-b1@1-999-abc" / "chunks.jsonl").write_text("消した文書の本文", encoding="utf-8")
    (root / "b0@9").mkdir()  # an older build
    (root / "b1@7").mkdir()  # a newer version, written by a worker of this home that moved on
    _row, folder = _local_copy(settings)
    assert sorted(p.name for p in root.iterdir()) == [".lock", "b1@1", "b1@7"]
