"""Bounds on what one uploaded document may expand to (decompression bombs, huge sheets).

Office files are ZIP archives: their members are checked from the central directory before
anything is decompressed (Python's zipfile never reads past a member's declared size). While a
file is read, the text, rows, columns and cells are counted and reading stops at the first limit.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from assistant.config import Settings
from assistant.ingest.errors import IngestError

MB = 1_000_000
# Members smaller than this are not judged by their compression ratio (small XML compresses well).
RATIO_MIN_MEMBER_BYTES = 5 * MB
XML_SUFFIXES = (".xml", ".rels", ".vml")


@dataclass(frozen=True)
class ReadLimits:
    """The limits of Settings (max_unpacked_mb, max_document_chars, …) in the units the readers count."""

    max_unpacked_bytes: int
    max_xml_bytes: int
    max_compression_ratio: float
    max_chars: int
    max_cells: int
    max_rows: int
    max_columns: int
    max_pages: int

    @classmethod
    def defaults(cls) -> "ReadLimits":
        return cls.from_settings(Settings())

    @classmethod
    def from_settings(cls, settings: Settings) -> "ReadLimits":
        return cls(
            max_unpacked_bytes=int(settings.max_unpacked_mb * MB),
            max_xml_bytes=int(settings.max_xml_mb * MB),
            max_compression_ratio=float(settings.max_compression_ratio),
            max_chars=int(settings.max_document_chars),
            max_cells=int(settings.max_sheet_cells),
            max_rows=int(settings.max_sheet_rows),
            max_columns=int(settings.max_sheet_columns),
            max_pages=int(settings.max_pdf_pages),
        )


def _mb(size: float) -> str:
    return f"{size / MB:,.1f} MB"


def check_archive(path: Path, limits: ReadLimits) -> None:
    """Refuse an Office file whose members would expand beyond the limits (before reading them)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IngestError(f"{path.name}: Office ファイル（ZIP 形式）として開けません（{exc}）") from exc
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise IngestError(
            f"{path.name}: 展開後の大きさが上限を超えるため読み込みません（展開後 {_mb(total)}、上限 {_mb(limits.max_unpacked_bytes)}）。"
            "圧縮爆弾の可能性があります"
        )
    xml = sum(m.file_size for m in members if m.filename.lower().endswith(XML_SUFFIXES))
    if xml > limits.max_xml_bytes:
        raise IngestError(
            f"{path.name}: 文書の本体（XML）が大きすぎるため読み込みません（展開後 {_mb(xml)}、上限 {_mb(limits.max_xml_bytes)}）。"
            "資料を分割して登録してください"
        )
    for member in members:
        if member.file_size < RATIO_MIN_MEMBER_BYTES:
            continue
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > limits.max_compression_ratio:
            raise IngestError(
                f"{path.name}: 圧縮率が異常に高い部品（{member.filename}、{ratio:,.0f} 倍）を含むため読み込みません。"
                "圧縮爆弾の可能性があります"
            )


class ReadBudget:
    """Counts what a loader has produced and stops it at the first limit, with a clear message."""

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.name = path.name
        self.limits = limits
        self.chars = 0
        self.cells = 0
        self.rows = 0
        self.pages = 0

    def text(self, value: str) -> str:
        self.chars += len(value)
        if self.chars > self.limits.max_chars:
            raise IngestError(
                f"{self.name}: 文字数が上限（{self.limits.max_chars:,} 文字）を超えるため読み込みません。資料を分割して登録してください"
            )
        return value

    def row(self, width: int) -> None:
        """One row of a sheet or table, `width` cells wide (including the empty ones before the last)."""
        self.rows += 1
        self.cells += width
        if width > self.limits.max_columns:
            raise IngestError(f"{self.name}: 列数が上限（{self.limits.max_columns:,} 列）を超える行があるため読み込みません")
        if self.rows > self.limits.max_rows:
            raise IngestError(f"{self.name}: 行数が上限（{self.limits.max_rows:,} 行）を超えるため読み込みません")
        if self.cells > self.limits.max_cells:
            raise IngestError(f"{self.name}: セル数が上限（{self.limits.max_cells:,} セル）を超えるため読み込みません")

    def sheet(self) -> None:
        """Rows are limited per sheet; cells and text per file."""
        self.rows = 0

    def page(self) -> None:
        self.pages += 1
        if self.pages > self.limits.max_pages:
            raise IngestError(f"{self.name}: ページ数が上限（{self.limits.max_pages:,} ページ）を超えるため読み込みません")
