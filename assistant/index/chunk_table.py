"""The chunks of an opened build, read from its chunk file when asked for.

A worker holding 50,000 chunk objects spent about 100 MB on them, while a question reads a few dozen.
The table keeps only what filtering needs for every chunk (`ChunkRow`, from the build's row list) and
the byte offset of each chunk's line; a chunk is parsed when a search, a citation or a check item asks
for it, and the chunks asked for most recently are kept. The file is read with `pread`, so its pages
stay in the operating system's cache (shared by all workers) rather than in the process.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, overload

import numpy as np
import orjson

from assistant.chunk import Chunk
from assistant.ingest.docstore import chunk_scope

CHUNKS_KEPT = 4096  # parsed chunks kept per table (corpus chunks are asked for again and again)
_SCAN_SLICE = 1 << 18


class ChunkRow(NamedTuple):
    """What the index knows of every chunk without reading it: its ids and the attributes filters test."""

    source_id: str
    doc_id: str | None
    kind: str
    confidence: str
    as_of: str
    scope: str  # as `chunk_scope` tells it: public unless the document was given a municipality's scope
    municipality: str | None

    @classmethod
    def of(cls, chunk: Chunk) -> "ChunkRow":
        scope, municipality = chunk_scope(chunk)
        return cls(chunk.source_id, chunk.meta.get("doc_id"), chunk.kind, chunk.confidence, chunk.as_of, scope, municipality)

    @classmethod
    def of_line(cls, line: bytes) -> "ChunkRow":
        """The row of a chunk as a line of a chunk file holds it (JSON)."""
        return cls.of(Chunk.from_dict(orjson.loads(line)))


# The fields most rows share with many others: stored once per distinct value, each row holding a number.
_SHARED_FIELDS = ChunkRow._fields[2:]
_OPTIONAL_FIELDS = frozenset({"doc_id", "municipality"})


def encode_rows(rows: Sequence[ChunkRow]) -> bytes:
    """The build's row list, column by column.

    Read back as one JSON array per row, 50,000 rows left about 20 MB of freed small objects that the
    process could not give back; columns with numbered values make only the ids as separate objects.
    """
    shared = {}
    for name in _SHARED_FIELDS:
        values = [getattr(row, name) for row in rows]
        distinct = list(dict.fromkeys(values))
        number = {value: i for i, value in enumerate(distinct)}
        shared[name] = {"values": distinct, "codes": [number[v] for v in values]}
    return orjson.dumps({"source_id": [r.source_id for r in rows], "doc_id": [r.doc_id for r in rows], "shared": shared})


def decode_rows(data: bytes) -> list[ChunkRow]:
    """The rows of `encode_rows`; ValueError when the list is damaged (wrong shape, type or number)."""
    try:
        table = orjson.loads(data)
        source_ids, doc_ids, shared = table["source_id"], table["doc_id"], table["shared"]
        columns = [_decoded_column(name, shared[name], len(source_ids)) for name in _SHARED_FIELDS]
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"the row list is damaged ({type(exc).__name__})") from exc
    _check_values("source_id", source_ids, len(source_ids))
    _check_values("doc_id", doc_ids, len(source_ids))
    return [ChunkRow(*fields) for fields in zip(source_ids, doc_ids, *columns)]


def _decoded_column(name: str, column: dict, size: int) -> list[str | None]:
    values, codes = column["values"], column["codes"]
    _check_values(name, values, len(values))
    if not isinstance(codes, list) or len(codes) != size or not all(type(c) is int and 0 <= c < len(values) for c in codes):
        raise ValueError(f"the row list's {name} column has the wrong length or a number with no value")
    return [values[c] for c in codes]


def _check_values(name: str, values: object, size: int) -> None:
    allowed = (str, type(None)) if name in _OPTIONAL_FIELDS else (str,)
    if not isinstance(values, list) or len(values) != size or not all(isinstance(v, allowed) for v in values):
        raise ValueError(f"the row list's {name} column has the wrong shape or types")


def line_offsets(path: Path) -> np.ndarray:
    """Start offsets of the file's lines, plus its length at the end (line i is offsets[i]:offsets[i+1]-1).
    Every line counts, also an empty one: a build's chunk file has none (one JSON line per chunk).

    The file is read into one small buffer, used again for each piece: blocks of a few MB each stayed with
    the process after the scan, and a mapping of the whole file counted all its pages while it was scanned.
    """
    starts = [np.zeros(1, dtype=np.int64)]
    position = 0
    buffer = bytearray(_SCAN_SLICE)
    with path.open("rb", buffering=0) as handle:
        while read := handle.readinto(buffer):
            newlines = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8, count=read) == 0x0A)
            starts.append(newlines + (position + 1))
            position += read
    offsets = np.concatenate(starts)
    if offsets[-1] != position:  # the last line has no newline
        offsets = np.append(offsets, position)
    return offsets


class ChunkTable(Sequence[Chunk]):
    """Row i = the chunk on line i of the build's chunk file."""

    def __init__(self, path: Path, rows: list[ChunkRow]) -> None:
        self.rows = rows
        self._offsets = line_offsets(path)
        if len(self._offsets) - 1 != len(rows):
            raise ValueError(f"{path.name} has {len(self._offsets) - 1} lines for {len(rows)} rows")
        self._fd = os.open(path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self._fd)
        self._kept: OrderedDict[int, Chunk] = OrderedDict()
        self._lock = threading.Lock()
        self.position = {row.source_id: i for i, row in enumerate(rows)}

    @property
    def by_id(self) -> "ChunksById":
        # Made when asked: a view kept on the table would hold it in a cycle, and its file open until the
        # cycle collector ran.
        return ChunksById(self)

    def close(self) -> None:
        with self._lock:
            self._closer()

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, position: int) -> Chunk: ...

    @overload
    def __getitem__(self, position: slice) -> list[Chunk]: ...

    def __getitem__(self, position: int | slice) -> Chunk | list[Chunk]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(position)
        with self._lock:
            chunk = self._kept.get(position)
            if chunk is not None:
                self._kept.move_to_end(position)
                return chunk
        chunk = self._read(position)
        with self._lock:
            self._kept[position] = chunk
            if len(self._kept) > CHUNKS_KEPT:
                self._kept.popitem(last=False)
        return chunk

    def __iter__(self) -> Iterator[Chunk]:
        # A full pass (tests, an export) parses every line once without filling the kept chunks.
        return (self._read(i) for i in range(len(self)))

    def _read(self, position: int) -> Chunk:
        start, end = int(self._offsets[position]), int(self._offsets[position + 1])
        with self._lock:  # not closed (and its number not reused) while it is read
            if not self._closer.alive:
                raise ValueError("the chunk table is closed")
            line = os.pread(self._fd, end - start, start)
        chunk = Chunk.from_dict(orjson.loads(line))
        if chunk.source_id != self.rows[position].source_id:
            raise ValueError(f"line {position + 1} of the chunk file is not chunk {self.rows[position].source_id}")
        return chunk


class ChunksById(Mapping[str, Chunk]):
    """source id → chunk, over a table."""

    def __init__(self, table: ChunkTable) -> None:
        self._table = table

    def __getitem__(self, source_id: str) -> Chunk:
        return self._table[self._table.position[source_id]]

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._table.position

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.position)

    def __len__(self) -> int:
        return len(self._table.position)
