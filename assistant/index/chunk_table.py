"""The chunks of an opened build, read from its chunk file when asked for.

A worker holding 50,000 chunk objects spent about 100 MB on them, while a question reads a few dozen.
The table keeps only what filtering needs for every chunk (`ChunkRow`, from the build's row list) and
the byte offset of each chunk's line; a chunk is parsed when a search, a citation or a check item asks
for it, and the chunks asked for most recently are kept. The file is read with `pread`, so its pages
stay in the operating system's cache (shared by all workers) rather than in the process.
"""

from __future__ import annotations

import os
import sys
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
_SCAN_BLOCK = 1 << 22


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
    def parse(cls, value: object) -> "ChunkRow":
        """A row as stored in the row list (a JSON array of the fields); ValueError when it is not one."""
        if not isinstance(value, list) or len(value) != len(cls._fields):
            raise ValueError("a row of the row list has the wrong shape")
        source_id, doc_id, *shared = value
        kind, confidence, as_of, scope, municipality = shared
        if not all(isinstance(v, str) for v in (source_id, kind, confidence, as_of, scope)) or not all(
            v is None or isinstance(v, str) for v in (doc_id, municipality)
        ):
            raise ValueError("a row of the row list has the wrong types")
        # Kinds, dates and municipalities repeat across thousands of rows: one string object each.
        return cls(source_id, doc_id, *(sys.intern(v) if isinstance(v, str) else v for v in shared))


def line_offsets(path: Path) -> np.ndarray:
    """Start offsets of the file's lines, plus its length at the end (line i is offsets[i]:offsets[i+1]-1).
    Every line counts, also an empty one: a build's chunk file has none (one JSON line per chunk)."""
    starts = [np.zeros(1, dtype=np.int64)]
    position = 0
    with path.open("rb") as handle:
        while block := handle.read(_SCAN_BLOCK):
            newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
            starts.append(newlines.astype(np.int64) + position + 1)
            position += len(block)
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
