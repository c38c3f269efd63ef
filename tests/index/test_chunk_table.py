"""The chunk table reads each chunk from the build's chunk file when asked, and equals the chunks written."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from assistant.chunk import Chunk
from assistant.index.chunk_table import CHUNKS_KEPT, ChunkRow, ChunkTable, decode_rows, encode_rows, line_offsets


def _chunk(n: int, **meta: str) -> Chunk:
    return Chunk(source_id=f"doc-{n:05d}", title=f"資料{n}", locator=f"{n} ページ", text=f"本文{n}。" * (n % 7 + 1),
                 kind="guidance", as_of="2025-04-01", confidence="要確認", origin="upload", meta={"doc_id": f"d{n // 3}", **meta})


def _write(path: Path, chunks: list[Chunk], *, final_newline: bool = True) -> None:
    body = b"\n".join(orjson.dumps(c.to_dict()) for c in chunks)
    path.write_bytes(body + (b"\n" if final_newline else b""))


@pytest.mark.parametrize("final_newline", [True, False])
def test_every_position_and_id_gives_the_chunk_written(tmp_path: Path, final_newline: bool) -> None:
    chunks = [_chunk(n) for n in range(50)] + [_chunk(50, scope="municipality", municipality="さくら市")]
    _write(tmp_path / "chunks.jsonl", chunks, final_newline=final_newline)
    table = ChunkTable(tmp_path / "chunks.jsonl", [ChunkRow.of(c) for c in chunks])
    assert len(table) == len(chunks)
    assert list(table) == chunks
    assert table[7] == chunks[7] and table[-1] == chunks[-1] and table[3:6] == chunks[3:6]
    assert table.by_id["doc-00050"].meta["municipality"] == "さくら市"
    assert "doc-00049" in table.by_id and "doc-99999" not in table.by_id and table.by_id.get("doc-99999") is None
    assert table.position["doc-00010"] == 10
    with pytest.raises(IndexError):
        table[len(chunks)]


def test_rows_keep_what_filters_need(tmp_path: Path) -> None:
    chunk = _chunk(3, scope="municipality", municipality="みなと町")
    row = ChunkRow.of(chunk)
    assert row == ChunkRow("doc-00003", "d1", "guidance", "要確認", "2025-04-01", "municipality", "みなと町")


def test_the_row_list_reads_back_as_written() -> None:
    rows = [ChunkRow.of(_chunk(n)) for n in range(40)] + [ChunkRow.of(_chunk(40, scope="municipality", municipality="みなと町"))]
    rows.append(rows[0]._replace(doc_id=None, kind="cases"))
    decoded = decode_rows(encode_rows(rows))
    assert decoded == rows
    assert decoded[1].kind is decoded[2].kind, "a value shared by rows is one object"
    assert decode_rows(encode_rows([])) == []


def _damaged(table: dict, path: tuple, value: object) -> bytes:
    *parents, last = path
    node = table
    for key in parents:
        node = node[key]
    node[last] = value
    return orjson.dumps(table)


@pytest.mark.parametrize("path, value", [
    (("source_id",), ["doc-1"]),  # fewer ids than rows
    (("source_id", 0), 7),
    (("doc_id", 1), ["d"]),
    (("shared", "kind", "codes", 0), 5),  # no such value
    (("shared", "kind", "codes", 0), -1),
    (("shared", "kind", "codes", 0), "0"),
    (("shared", "as_of", "values", 0), None),  # a date is never missing
    (("shared", "scope"), None),
    (("shared",), {}),
])
def test_a_damaged_row_list_is_refused(path: tuple, value: object) -> None:
    rows = [ChunkRow.of(_chunk(n)) for n in range(3)]
    table = orjson.loads(encode_rows(rows))
    with pytest.raises(ValueError):
        decode_rows(_damaged(table, path, value))
    for garbage in (b"", b"[1, 2]", b"{", b'"rows"'):
        with pytest.raises(ValueError):
            decode_rows(garbage)


def test_a_file_that_does_not_match_its_rows_is_refused(tmp_path: Path) -> None:
    chunks = [_chunk(n) for n in range(5)]
    _write(tmp_path / "chunks.jsonl", chunks)
    with pytest.raises(ValueError):
        ChunkTable(tmp_path / "chunks.jsonl", [ChunkRow.of(c) for c in chunks[:4]])
    shifted = ChunkTable(tmp_path / "chunks.jsonl", [ChunkRow.of(c) for c in reversed(chunks)])
    with pytest.raises(ValueError):
        shifted[0]  # line 1 holds another chunk than the row list says


def test_only_recent_chunks_are_kept_parsed(tmp_path: Path) -> None:
    chunks = [_chunk(n) for n in range(CHUNKS_KEPT + 10)]
    _write(tmp_path / "chunks.jsonl", chunks)
    table = ChunkTable(tmp_path / "chunks.jsonl", [ChunkRow.of(c) for c in chunks])
    first = table[0]
    assert table[0] is first, "a chunk asked for again is the same object"
    for position in range(1, len(chunks)):
        table[position]
    assert len(table._kept) == CHUNKS_KEPT and table[0] is not first and table[0] == first


def test_line_offsets_cross_scanned_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.index.chunk_table as chunk_table

    monkeypatch.setattr(chunk_table, "_SCAN_SLICE", 7)
    path = tmp_path / "lines"
    path.write_bytes(b"ab\ncdefghijk\n\xe3\x81\x82\nlast")
    assert line_offsets(path).tolist() == [0, 3, 13, 17, 21]
    path.write_bytes(b"ab\ncd\n")
    assert line_offsets(path).tolist() == [0, 3, 6]
    path.write_bytes(b"")
    assert line_offsets(path).tolist() == [0]
