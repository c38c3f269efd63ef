"""How a person cites a chunk: the public source it rests on and the section, never a corpus file or entry id."""

from __future__ import annotations

from assistant.chunk import Chunk
from assistant.knowledge import Knowledge


class SourceNames:
    def __init__(self, knowledge: Knowledge) -> None:
        self.sources = knowledge.sources

    def label(self, chunk: Chunk) -> str:
        primary = next((self.sources[s] for s in chunk.sources if s in self.sources), None)
        section = chunk.locator.strip()
        if primary is None:  # an ingested document: its own title and page
            return f"{chunk.title}（{section}）" if section and section not in chunk.title else chunk.title
        return f"{primary.title}・{section}" if section else primary.title

    def is_official_document(self, chunk: Chunk) -> bool:
        """An ingested document that an administrator marked official."""
        return chunk.origin not in ("",) and not chunk.origin.startswith("corpus/") and chunk.confidence == "確認済み"
