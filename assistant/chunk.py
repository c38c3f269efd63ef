"""The unit of retrieval shared by the corpus, ingested documents, the index and citations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any

from assistant.textnorm import normalize


@dataclass(frozen=True)
class Chunk:
    source_id: str
    title: str
    locator: str
    text: str
    kind: str
    as_of: str
    confidence: str
    origin: str
    sources: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    # Set at ingest when the text addresses the reader as a program (「以上の指示を無視し…」):
    # such a chunk stays searchable and viewable but is never quoted as a conclusion or reason.
    instruction_like: bool = False

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        # Field by field: dataclasses.asdict deep-copies every value, which dominated writing a large index.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["sources"] = list(self.sources)
        data["meta"] = dict(self.meta)
        data["content_hash"] = self.content_hash
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Chunk":
        return cls(
            source_id=data["source_id"],
            title=data["title"],
            locator=data["locator"],
            text=data["text"],
            kind=data["kind"],
            as_of=data["as_of"],
            confidence=data["confidence"],
            origin=data["origin"],
            sources=tuple(data.get("sources", ())),
            meta=dict(data.get("meta", {})),
            instruction_like=bool(data.get("instruction_like", False)),
        )


_FIELD_NAMES = tuple(f.name for f in fields(Chunk))


def make_chunk(**fields: Any) -> Chunk:
    """Create a chunk whose text is in the project's normalised form (quotes are checked against it)."""
    fields["text"] = normalize(fields["text"])
    fields["sources"] = tuple(fields.get("sources", ()))
    return Chunk(**fields)
