"""Citations: every quote is a verbatim substring of the indexed text of its chunk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from assistant.chunk import Chunk

MAX_QUOTE_CHARS = 160


@dataclass(frozen=True)
class Citation:
    source_id: str
    title: str
    locator: str
    quote: str
    as_of: str
    confidence: str
    label: str = ""  # how a person cites it: the public source and its section (no internal names)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def best_line(chunk: Chunk, needles: list[str]) -> str:
    """The chunk line that contains the most of the needles (first line when none match)."""
    lines = [line for line in chunk.text.split("\n") if line.strip()]
    if not lines:
        return chunk.text
    scored = [(sum(1 for n in needles if n and n in line), -index, line) for index, line in enumerate(lines)]
    best = max(scored)
    return best[2] if best[0] > 0 else lines[0]


def trim_quote(line: str, needles: list[str]) -> str:
    """Cut a long line to a window around the first needle; the result stays a substring."""
    if len(line) <= MAX_QUOTE_CHARS:
        return line
    start = 0
    for needle in needles:
        position = line.find(needle) if needle else -1
        if position >= 0:
            start = max(0, position - MAX_QUOTE_CHARS // 3)
            break
    return line[start : start + MAX_QUOTE_CHARS]


def cite(
    chunk: Chunk,
    needles: list[str] | None = None,
    quote: str | None = None,
    *,
    confidence: str | None = None,
    label: str = "",
) -> Citation:
    """A citation of a verbatim line of the chunk. `confidence` is that of the fact quoted, when it differs
    from the chunk's as a whole (a confirmed definition inside an entry that also holds unconfirmed examples)."""
    needles = needles or []
    if quote is None or quote not in chunk.text:
        quote = trim_quote(best_line(chunk, needles), needles)
    return Citation(
        source_id=chunk.source_id,
        title=chunk.title,
        locator=chunk.locator,
        quote=quote,
        as_of=chunk.as_of,
        confidence=confidence or chunk.confidence,
        label=label,
    )


def is_valid(citation: dict[str, str] | Citation, chunks_by_id: Mapping[str, Chunk]) -> bool:
    data = citation.to_dict() if isinstance(citation, Citation) else citation
    chunk = chunks_by_id.get(data.get("source_id", ""))
    quote = data.get("quote", "")
    return bool(chunk and quote and quote in chunk.text)
