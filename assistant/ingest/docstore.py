"""Ingested documents: one JSON record per origin file, replaced atomically, never duplicated."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant.chunk import Chunk, make_chunk
from assistant.ingest.chunker import split_text
from assistant.ingest.loaders import IngestError, load_sections

DocumentKind = Literal["guidance", "qa", "cases", "law", "other"]
DOCUMENT_KINDS: tuple[str, ...] = ("guidance", "qa", "cases", "law", "other")


@dataclass(frozen=True)
class IngestResult:
    path: str
    status: Literal["added", "updated", "unchanged", "removed", "error", "not_found"]
    message: str
    chunks: int = 0
    doc_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def document_id(path: Path) -> str:
    return hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:10]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DocumentStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _record_path(self, doc_id: str) -> Path:
        return self.folder / f"{doc_id}.json"

    def records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, OSError):
                continue  # a damaged record is skipped; `index status` reports the count
        return out

    def damaged_records(self) -> list[str]:
        bad = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, OSError):
                bad.append(path.name)
        return bad

    def chunks(self) -> list[Chunk]:
        return [Chunk.from_dict(c) for record in self.records() for c in record["chunks"]]

    def get(self, doc_id: str) -> dict[str, Any] | None:
        path = self._record_path(doc_id)
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def remove(self, path: Path) -> IngestResult:
        doc_id = document_id(path)
        record = self._record_path(doc_id)
        if not record.exists():
            return IngestResult(str(path), "not_found", "登録されていない文書です", doc_id=doc_id)
        record.unlink()
        return IngestResult(str(path), "removed", "文書を削除しました", doc_id=doc_id)

    def ingest(
        self,
        path: Path,
        *,
        kind: str = "other",
        as_of: str | None = None,
        title: str | None = None,
        chunk_chars: int = 500,
        max_bytes: int = 50_000_000,
    ) -> IngestResult:
        path = Path(path)
        if kind not in DOCUMENT_KINDS:
            return IngestResult(str(path), "error", f"種別 {kind!r} は使えません（{', '.join(DOCUMENT_KINDS)}）")
        if as_of is not None:
            try:
                dt.date.fromisoformat(as_of)
            except ValueError:
                return IngestResult(str(path), "error", f"時点 {as_of!r} は YYYY-MM-DD で指定してください")
        try:
            if not path.is_file():
                raise IngestError(f"{path}: ファイルが見つかりません")
            doc_id = document_id(path)
            digest = file_hash(path)
            existing = self.get(doc_id)
            same_options = existing and existing.get("kind") == kind and existing.get("as_of_given") == as_of and (
                title is None or existing.get("title") == title
            )
            if existing and existing.get("content_hash") == digest and same_options:
                return IngestResult(str(path), "unchanged", "変更はありません", len(existing["chunks"]), doc_id)
            sections = load_sections(path, max_bytes)
        except IngestError as exc:
            return IngestResult(str(path), "error", str(exc))
        except Exception as exc:  # any unexpected loader failure is reported per file
            return IngestResult(str(path), "error", f"{path.name}: 読み込みに失敗しました（{type(exc).__name__}: {exc}）")
        doc_title = title or path.stem
        effective_as_of = as_of or dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
        confidence = "確認済み" if as_of else "要確認"
        chunks: list[Chunk] = []
        for section in sections:
            for piece in split_text(section.text, chunk_chars):
                number = len(chunks) + 1
                heading = f"{section.heading}\n" if section.heading and not piece.startswith(section.heading) else ""
                chunks.append(
                    make_chunk(
                        source_id=f"doc-{doc_id}-{number:04d}",
                        title=doc_title,
                        locator=section.locator,
                        text=heading + piece,
                        kind=kind,
                        as_of=effective_as_of,
                        confidence=confidence,
                        origin=str(path.resolve()),
                        sources=(f"doc-{doc_id}",),
                        meta={"doc_id": doc_id, "as_of_estimated": as_of is None},
                    )
                )
        record = {
            "doc_id": doc_id,
            "origin": str(path.resolve()),
            "file_name": path.name,
            "title": doc_title,
            "kind": kind,
            "as_of": effective_as_of,
            "as_of_given": as_of,
            "content_hash": digest,
            "ingested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "chunks": [c.to_dict() for c in chunks],
        }
        write_json_atomic(self._record_path(doc_id), record)
        status = "updated" if existing else "added"
        note = "" if as_of else "（時点未指定のためファイル更新日を仮の時点とし、要確認として扱います）"
        return IngestResult(str(path), status, f"{len(chunks)} チャンクを登録しました{note}", len(chunks), doc_id)
