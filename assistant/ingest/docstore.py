"""Ingested documents: one JSON record per origin file, replaced atomically, never duplicated.

Personal data is masked before anything is stored (records, and through them the chunk files,
Chroma and the BM25 vocabulary); instruction-like passages are marked (assistant.ingest.screening).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant.chunk import Chunk, make_chunk
from assistant.config import DEFAULT_CORPUS_DIR
from assistant.dates import iso_date
from assistant.ingest.chunker import split_text
from assistant.ingest.limits import ReadLimits
from assistant.ingest.loaders import IngestError, Section, load_sections
from assistant.ingest.records import FileRecords, RecordCensus, RecordStore, record_store, write_json_atomic
from assistant.ingest.screening import load_instruction_rules
from assistant.privacy import kind_labels, mask_personal_data
from assistant.validation import InputError, clean_text

DocumentKind = Literal["guidance", "qa", "cases", "law", "other"]
DOCUMENT_KINDS: tuple[str, ...] = ("guidance", "qa", "cases", "law", "other")


CONFIRMED = "確認済み"
UNCONFIRMED = "要確認"
CONFIDENCES: tuple[str, ...] = (CONFIRMED, UNCONFIRMED)
# Who a document answers: everyone (official material), or the users of one municipality (its own material).
SCOPE_PUBLIC = "public"
SCOPE_MUNICIPALITY = "municipality"
SCOPES: tuple[str, ...] = (SCOPE_PUBLIC, SCOPE_MUNICIPALITY)
MAX_MUNICIPALITY_CHARS = 64
MAX_TITLE_CHARS = 200

# Records written before masking and screening at ingest have no "format" (or format 1).
RECORD_FORMAT = 2
ORIGINALS = "originals"


@dataclass(frozen=True)
class IngestResult:
    path: str
    status: Literal["added", "updated", "unchanged", "removed", "error", "not_found"]
    message: str
    chunks: int = 0
    doc_id: str | None = None
    masked: tuple[str, ...] = ()
    instruction_like: int = 0
    official: bool = False
    original_kept: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["masked"] = list(self.masked)
        return data


def chunk_scope(chunk: Chunk) -> tuple[str, str | None]:
    """(scope, municipality) of a chunk; corpus chunks and documents ingested before scopes existed are public."""
    scope = str(chunk.meta.get("scope") or SCOPE_PUBLIC)
    return scope, (str(chunk.meta["municipality"]) if chunk.meta.get("municipality") else None)


def clean_municipality(name: str | None) -> str | None:
    """A municipality name as stored (None when blank); InputError when it cannot be one."""
    value = clean_text(name or "").strip()
    if not value:
        return None
    if len(value) > MAX_MUNICIPALITY_CHARS or "\n" in value:
        raise InputError(f"団体名は {MAX_MUNICIPALITY_CHARS} 文字以内の 1 行で入力してください")
    return value


def masked_kinds_label(kinds: list[str] | tuple[str, ...]) -> str:
    return "・".join(kind_labels(kinds))


def document_id(path: Path) -> str:
    return hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:10]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PreparedDocument:
    """A document read, masked, screened and chunked, not yet stored."""

    label: str
    path: Path
    record: dict[str, Any]
    chunks: list[Chunk]
    existing: dict[str, Any] | None
    keep_original: bool
    as_of_given: bool

    @property
    def doc_id(self) -> str:
        return str(self.record["doc_id"])


@dataclass
class _Masked:
    """Text of one document after masking, and the kinds of personal data that were found."""

    kinds: set[str]

    def __call__(self, text: str) -> str:
        masked, kinds = mask_personal_data(text)
        self.kinds.update(kinds)
        return masked


class DocumentStore:
    """Ingested documents under `folder`: one masked, screened record per document.

    The original file is copied (to `folder/originals`, never a served folder) only when the
    caller asks for it, and deleted with the document.
    """

    def __init__(self, folder: Path, corpus_dir: Path | None = None, records: RecordStore | None = None) -> None:
        self.folder = folder
        self.corpus_dir = corpus_dir or DEFAULT_CORPUS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.backend: RecordStore = records or FileRecords(folder)

    @classmethod
    def for_settings(cls, settings: Any) -> "DocumentStore":
        """The store the configuration names: records in the database when one is configured, else files."""
        return cls(settings.documents_dir, settings.corpus_dir, record_store(settings))

    @property
    def originals_dir(self) -> Path:
        return self.folder / ORIGINALS

    def records(self) -> list[dict[str, Any]]:
        """Every readable record (a damaged one is skipped; `index status` reports the count)."""
        return self.backend.all()

    def record_heads(self) -> list[dict[str, Any]]:
        """Every readable record without its chunks (cheap for the file store: see FileRecords.heads)."""
        return self.backend.heads()[0]

    def record_census(self) -> RecordCensus:
        """How many records can be read, their fingerprint and the damaged ones (see the backends' `census`)."""
        return self.backend.census()

    def damaged_records(self) -> list[str]:
        return self.backend.heads()[1]

    def chunks(self) -> list[Chunk]:
        return [Chunk.from_dict(c) for record in self.records() for c in record["chunks"]]

    def chunks_of(self, doc_ids: set[str]) -> list[Chunk]:
        return [Chunk.from_dict(c) for record in self.records() if record.get("doc_id") in doc_ids for c in record["chunks"]]

    def get(self, doc_id: str) -> dict[str, Any] | None:
        return self.backend.get(doc_id)

    def group_commit(self) -> AbstractContextManager[None]:
        """Records committed inside the block reach the disk together when it ends (see FileRecords)."""
        return self.backend.group_commit()

    # -- originals --------------------------------------------------------------------------------
    def _keep_original(self, source: Path, doc_id: str) -> str:
        self.originals_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{doc_id}{source.suffix.lower()}"
        fd, tmp = tempfile.mkstemp(dir=self.originals_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as target, source.open("rb") as handle:
                shutil.copyfileobj(handle, target)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.originals_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"{ORIGINALS}/{name}"

    def _purge_originals(self, record: dict[str, Any], keep: Path | None = None) -> bool:
        """Delete every copy of the document this store made (also the upload copies of older versions)."""
        doc_id = str(record.get("doc_id", ""))
        candidates = list(self.originals_dir.glob(f"{doc_id}.*")) if doc_id else []
        origin = Path(str(record.get("origin", "")))
        if origin.is_absolute() and origin.resolve().is_relative_to(self.folder.resolve()):
            candidates.append(origin)
        removed = False
        for path in candidates:
            if path.is_file() and (keep is None or path.resolve() != keep.resolve()):
                path.unlink()
                removed = True
        return removed

    def remove(self, path: Path, *, origin: Path | None = None) -> IngestResult:
        doc_id = document_id(origin or path)
        record = self.backend.delete(doc_id)
        if record is None:
            return IngestResult(str(path), "not_found", "登録されていない文書です", doc_id=doc_id)
        record["doc_id"] = doc_id
        note = "（保管していた元のファイルも削除しました）" if self._purge_originals(record) else ""
        return IngestResult(str(path), "removed", f"文書を削除しました{note}", doc_id=doc_id)

    def remove_document(self, doc_id: str) -> IngestResult:
        """Remove the document with this id (as listed by `records`) and every copy kept of it."""
        if not doc_id or not all(ch in "0123456789abcdef" for ch in doc_id):
            return IngestResult(str(doc_id), "not_found", "登録されていない文書です")
        record = self.backend.delete(doc_id)
        if record is None:
            return IngestResult(doc_id, "not_found", "登録されていない文書です", doc_id=doc_id)
        name = str(record.get("file_name") or doc_id)
        note = "（保管していた元のファイルも削除しました）" if self._purge_originals(record | {"doc_id": doc_id}) else ""
        return IngestResult(name, "removed", f"文書を削除しました{note}", doc_id=doc_id)

    # -- ingest -----------------------------------------------------------------------------------
    def _chunks(
        self,
        sections: list[Section],
        *,
        doc_id: str,
        title: str,
        kind: str,
        as_of: str,
        as_of_estimated: bool,
        official: bool,
        confidence: str,
        scope: str,
        municipality: str | None,
        origin: str,
        chunk_chars: int,
    ) -> list[Chunk]:
        rules = load_instruction_rules(self.corpus_dir)
        chunks: list[Chunk] = []
        for section in sections:
            for piece in split_text(section.text, chunk_chars):
                number = len(chunks) + 1
                heading = f"{section.heading}\n" if section.heading and not piece.startswith(section.heading) else ""
                findings = rules.findings(heading + piece)
                chunks.append(
                    make_chunk(
                        source_id=f"doc-{doc_id}-{number:04d}",
                        title=title,
                        locator=section.locator,
                        text=heading + piece,
                        kind=kind,
                        as_of=as_of,
                        confidence=confidence,
                        origin=origin,
                        sources=(f"doc-{doc_id}",),
                        meta={"doc_id": doc_id, "as_of_estimated": as_of_estimated, "official": official,
                              "scope": scope}
                        | ({"municipality": municipality} if municipality else {})
                        | ({"instruction_findings": findings} if findings else {}),
                        instruction_like=bool(findings),
                    )
                )
        return chunks

    def ingest(self, path: Path, **options: Any) -> IngestResult:
        """Read, mask and screen one file and store it as a record (`options` as for `prepare`).

        `origin` names the document when `path` is a temporary copy (an upload): the same origin
        is the same document. Uploaded material is 要確認 unless `official` is set by an
        administrator or `confidence` says otherwise; the file itself is kept only with `keep_original`.
        `scope` says who it answers: everyone (public), or only the users of `municipality`.
        `as_of` may be written as 2026-04-01, 2026/4/1, 2026年4月1日 or 令和8年4月1日.
        """
        outcome = self.prepare(path, **options)
        return self.commit(outcome) if isinstance(outcome, PreparedDocument) else outcome

    def prepare(
        self,
        path: Path,
        *,
        kind: str = "other",
        as_of: str | None = None,
        title: str | None = None,
        chunk_chars: int = 500,
        max_bytes: int = 50_000_000,
        limits: ReadLimits | None = None,
        official: bool = False,
        keep_original: bool = False,
        origin: Path | None = None,
        confidence: str | None = None,
        scope: str = SCOPE_PUBLIC,
        municipality: str | None = None,
        existing: dict[str, Any] | bool | None = None,  # None: look the record up; False: there is none
    ) -> "PreparedDocument | IngestResult":
        """Everything of `ingest` but storing: the masked record to write, or the result when there is nothing to
        write (unchanged, or an error). Reads nothing but the file and (unless `existing` is given) its old record,
        so that files can be prepared in worker processes."""
        path = Path(path)
        label = str(origin or path)
        if kind not in DOCUMENT_KINDS:
            return IngestResult(label, "error", f"種別 {kind!r} は使えません（{', '.join(DOCUMENT_KINDS)}）")
        try:
            as_of = iso_date(as_of) if as_of is not None and as_of.strip() else None
        except InputError as exc:
            return IngestResult(label, "error", f"時点: {exc}")
        try:
            confidence, scope, municipality = _check_options(official, confidence, scope, municipality)
            if title is not None and (not title.strip() or len(title) > MAX_TITLE_CHARS):
                raise InputError(f"タイトルは 1〜{MAX_TITLE_CHARS} 文字で入力してください")
        except InputError as exc:
            return IngestResult(label, "error", str(exc))
        title = clean_text(title).strip() if title is not None else None
        identity = Path(origin) if origin is not None else path
        try:
            if not path.is_file():
                raise IngestError(f"{path}: ファイルが見つかりません")
            doc_id = document_id(identity)
            digest = file_hash(path)
            if existing is None:
                existing = self.get(doc_id)
            existing = existing if isinstance(existing, dict) else None
            same_options = existing and existing.get("format") == RECORD_FORMAT and existing.get("kind") == kind and (
                existing.get("as_of_given") == as_of
                and existing.get("official", False) == official
                and _record_confidence(existing) == confidence
                and existing.get("scope", SCOPE_PUBLIC) == scope
                and existing.get("municipality") == municipality
                and bool(existing.get("original")) == keep_original
                and (title is None or existing.get("title") == mask_personal_data(title)[0])
            )
            if existing and existing.get("content_hash") == digest and same_options:
                return IngestResult(
                    label, "unchanged", "変更はありません", len(existing["chunks"]), doc_id,
                    masked=tuple(existing.get("masked", [])), official=official, original_kept=keep_original,
                )
            sections = load_sections(path, max_bytes, limits)
        except IngestError as exc:
            return IngestResult(label, "error", str(exc))
        except Exception as exc:  # any unexpected loader failure is reported per file
            return IngestResult(label, "error", f"{path.name}: 読み込みに失敗しました（{type(exc).__name__}: {exc}）")
        mask = _Masked(set())
        sections = [Section(mask(s.locator), mask(s.heading), mask(s.text)) for s in sections]
        doc_title = mask(title or identity.stem)
        effective_as_of = as_of or dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
        shown_origin = mask(str(identity.resolve()))
        chunks = self._chunks(
            sections,
            doc_id=doc_id,
            title=doc_title,
            kind=kind,
            as_of=effective_as_of,
            as_of_estimated=as_of is None,
            official=official,
            confidence=confidence,
            scope=scope,
            municipality=municipality,
            origin=shown_origin,
            chunk_chars=chunk_chars,
        )
        masked = sorted(mask.kinds)
        flagged = sum(1 for c in chunks if c.instruction_like)
        record = {
            "format": RECORD_FORMAT,
            "doc_id": doc_id,
            "origin": shown_origin,
            "file_name": mask(identity.name),
            "title": doc_title,
            "kind": kind,
            "as_of": effective_as_of,
            "as_of_given": as_of,
            "official": official,
            "confidence": confidence,
            "scope": scope,
            "municipality": municipality,
            "masked": masked,
            "instruction_like_chunks": flagged,
            "original": None,
            "content_hash": digest,
            "ingested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "chunks": [c.to_dict() for c in chunks],
        }
        return PreparedDocument(label, path, record, chunks, existing, keep_original, as_of is not None)

    def commit(self, prepared: "PreparedDocument") -> IngestResult:
        """Store a prepared document: keep the original if asked, purge older copies, write the record."""
        record = dict(prepared.record)
        if prepared.existing:
            self._purge_originals(prepared.existing, keep=prepared.path)
        if prepared.keep_original:
            record["original"] = self._keep_original(prepared.path, record["doc_id"])
        self.backend.put(record)
        kept, masked, flagged = bool(record["original"]), record["masked"], record["instruction_like_chunks"]
        official = bool(record["official"])
        return IngestResult(
            prepared.label,
            "updated" if prepared.existing else "added",
            _ingest_message(len(prepared.chunks), masked, flagged, confidence=record["confidence"],
                            scope=record["scope"], municipality=record["municipality"],
                            as_of_given=prepared.as_of_given, kept=kept),
            len(prepared.chunks),
            record["doc_id"],
            masked=tuple(masked),
            instruction_like=flagged,
            official=official,
            original_kept=kept,
        )

    # -- records written by earlier versions --------------------------------------------------------
    def has_legacy_records(self) -> bool:
        return any(record.get("format") != RECORD_FORMAT for record in self.record_heads())

    def upgrade_records(self) -> int:
        """Mask and screen records stored before ingest did so (their text may hold personal data)."""
        upgraded = 0
        rules = load_instruction_rules(self.corpus_dir)
        for record in self.records():
            if record.get("format") == RECORD_FORMAT:
                continue
            mask = _Masked(set())
            official = bool(record.get("official", False))
            chunks = []
            for data in record.get("chunks", []):
                chunk = Chunk.from_dict(data)
                text = mask(chunk.text)
                findings = rules.findings(text)
                chunks.append(
                    make_chunk(
                        **{**chunk.__dict__, "text": text, "title": mask(chunk.title), "locator": mask(chunk.locator),
                           "origin": mask(chunk.origin), "confidence": _record_confidence(record),
                           "instruction_like": bool(findings),
                           "meta": chunk.meta | ({"instruction_findings": findings} if findings else {})}
                    ).to_dict()
                )
            record.update(
                format=RECORD_FORMAT,
                chunks=chunks,
                title=mask(str(record.get("title", ""))),
                file_name=mask(str(record.get("file_name", ""))),
                official=official,
                masked=sorted(mask.kinds | set(record.get("masked", []))),
                instruction_like_chunks=sum(1 for c in chunks if c["instruction_like"]),
            )
            if record.get("origin") and not Path(str(record["origin"])).resolve().is_relative_to(self.folder.resolve()):
                record["origin"] = mask(str(record["origin"]))
            self.backend.put(record)
            upgraded += 1
        return upgraded


def _check_options(
    official: bool, confidence: str | None, scope: str, municipality: str | None
) -> tuple[str, str, str | None]:
    """(confidence, scope, municipality) as stored; InputError in Japanese when they do not fit together."""
    confidence = confidence or (CONFIRMED if official else UNCONFIRMED)
    if confidence not in CONFIDENCES:
        raise InputError(f"確度は {' / '.join(CONFIDENCES)} から選んでください")
    if scope not in SCOPES:
        raise InputError(f"範囲 {scope!r} は使えません（{', '.join(SCOPES)}）")
    municipality = clean_municipality(municipality)
    if scope == SCOPE_MUNICIPALITY and municipality is None:
        raise InputError("団体の資料として登録するときは、団体名（例: ○○市）を入力してください")
    return confidence, scope, municipality if scope == SCOPE_MUNICIPALITY else None


def _record_confidence(record: dict[str, Any]) -> str:
    """The confidence of a record (records written before it was stored follow `official`)."""
    return str(record.get("confidence") or (CONFIRMED if record.get("official") else UNCONFIRMED))


def _ingest_message(
    chunks: int, masked: list[str], flagged: int, *, confidence: str, scope: str, municipality: str | None,
    as_of_given: bool, kept: bool,
) -> str:
    notes = [f"{chunks} チャンクを登録しました"]
    if masked:
        notes.append(f"個人情報をマスクしてから保存しました（{masked_kinds_label(masked)}）")
    if flagged:
        notes.append(f"指示文のような記載を含むチャンクが {flagged} 件あり、回答の根拠には使いません")
    if scope == SCOPE_MUNICIPALITY:
        notes.append(f"団体の資料として、{municipality}の利用者への回答にだけ使います")
    if confidence == UNCONFIRMED:
        notes.append("要確認として扱います")
    if not as_of_given:
        notes.append("時点が指定されていないため、ファイルの更新日を仮の時点とします")
    if kept:
        notes.append("元のファイルを保管しました（文書を削除すると一緒に削除されます）")
    return "。".join(notes) + "。"
