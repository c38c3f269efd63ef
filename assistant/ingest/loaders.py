"""File → sections of text with a locator (page, sheet, heading). One function per format."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.ingest.docx_reader import Table, read_docx
from assistant.ingest.errors import IngestError
from assistant.ingest.html_reader import read_html
from assistant.ingest.limits import ReadBudget, ReadLimits, check_archive
from assistant.knowledge.loader import parse_markdown_sections
from assistant.textnorm import normalize

__all__ = ["IngestError", "LOADERS", "ReadLimits", "Section", "TableRow", "load_sections", "load_table"]


@dataclass(frozen=True)
class Section:
    locator: str
    heading: str
    text: str


def _decode(data: bytes, path: Path) -> str:
    for encoding in ("utf-8-sig", "cp932", "euc_jp"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise IngestError(f"{path.name}: 文字コードを判別できません（UTF-8 / Shift_JIS / EUC-JP 以外）")


def load_pdf(path: Path, budget: ReadBudget, *, layout: bool = False) -> list[Section]:
    """One section per page with text; `layout` keeps the text where it stands on the page (table columns)."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise IngestError(f"{path.name}: パスワードで保護（暗号化）された PDF のため読み込めません")
            except (FileNotDecryptedError, NotImplementedError) as exc:
                raise IngestError(f"{path.name}: 暗号化された PDF のため読み込めません（{exc}）") from exc
        pages = reader.pages
        page_count = len(pages)
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{path.name}: PDF が壊れているか、PDF ではありません（{exc}）") from exc
    sections = []
    for number in range(1, page_count + 1):
        budget.page()
        try:
            page = pages[number - 1]
            text = (page.extract_text(extraction_mode="layout") if layout else page.extract_text()) or ""
        except (FileNotDecryptedError,) as exc:
            raise IngestError(f"{path.name}: 暗号化された PDF のため読み込めません（{exc}）") from exc
        except Exception as exc:  # pypdf raises many types on damaged content streams
            raise IngestError(f"{path.name}: {number}ページ目のテキストを取り出せません（{exc}）") from exc
        if text.strip():
            sections.append(Section(locator=f"p.{number}", heading="", text=budget.text(text)))
    if page_count and not sections:
        raise IngestError(f"{path.name}: テキスト層のない PDF です（画像のみ）。OCR でテキスト化してから登録してください")
    return sections


def load_docx(path: Path, budget: ReadBudget) -> list[Section]:
    check_archive(path, budget.limits)
    sections: list[Section] = []
    tables: list[Section] = []
    heading, lines = "", []

    def flush() -> None:
        if "".join(lines).strip():
            number = len(sections) + 1
            sections.append(Section(locator=f"§{number} {heading}".strip(), heading=heading, text="\n".join(lines)))

    for block in read_docx(path, budget):
        if isinstance(block, Table):
            rows = [" | ".join(cell.strip() for cell in row) for row in block.rows]
            if any(r.strip(" |") for r in rows):
                number = len(tables) + 1
                tables.append(Section(locator=f"表{number}", heading=f"表{number}", text="\n".join(rows)))
        elif block.style.lower().startswith(("heading", "title")) or block.style.startswith("見出し"):
            flush()
            heading, lines = block.text.strip(), []
        elif block.text.strip():
            lines.append(block.text)
    flush()
    return sections + tables


def _rows_to_sections(rows: list[list[str]], sheet: str, rows_per_section: int = 20) -> list[Section]:
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    header, body = rows[0], rows[1:] or rows[:1]
    sections = []
    for start in range(0, len(body), rows_per_section):
        block = body[start : start + rows_per_section]
        lines = []
        for row in block:
            cells = [f"{h}: {v}" if h else v for h, v in zip(header + [""] * len(row), row) if v.strip()]
            lines.append(" / ".join(cells))
        first = start + 2
        sections.append(Section(locator=f"{sheet} 行{first}-{first + len(block) - 1}", heading=sheet, text="\n".join(lines)))
    return sections


def _sheet_rows(sheet, budget: ReadBudget) -> list[list[str]]:  # noqa: ANN001 - openpyxl read-only sheet
    """The cells actually present: the declared dimension (A1:XFD1048576 in a 5 KB file) is ignored."""
    sheet.reset_dimensions()
    budget.sheet()
    rows = []
    for row in sheet.iter_rows(values_only=True):
        budget.row(len(row))
        values = ["" if v is None else budget.text(str(v)) for v in row]
        # Gaps between rows come back empty; keep them out of memory.
        rows.append(values if any(values) else [])
    return rows


def load_xlsx(path: Path, budget: ReadBudget) -> list[Section]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    check_archive(path, budget.limits)
    try:
        workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise IngestError(f"{path.name}: Excel ファイル（.xlsx）として開けません（{exc}）") from exc
    try:
        sections = []
        for sheet in workbook.worksheets:
            sections.extend(_rows_to_sections(_sheet_rows(sheet, budget), sheet.title))
    except zipfile.BadZipFile as exc:
        raise IngestError(f"{path.name}: Excel ファイルが壊れています（{exc}）") from exc
    finally:
        workbook.close()
    return sections


def _read_text_file(path: Path, budget: ReadBudget, markup_factor: int = 1) -> str:
    """Decode a plain-text format; markup may be `markup_factor` times longer than the text limit."""
    text = _decode(path.read_bytes(), path)
    if len(text) > budget.limits.max_chars * markup_factor:
        raise IngestError(
            f"{path.name}: 文字数が上限（{budget.limits.max_chars:,} 文字）を超えるため読み込みません。資料を分割して登録してください"
        )
    return text


def load_csv(path: Path, budget: ReadBudget) -> list[Section]:
    rows = []
    for row in csv.reader(io.StringIO(_read_text_file(path, budget))):
        budget.row(len(row))
        rows.append([budget.text(cell) for cell in row])
    return _rows_to_sections(rows, path.stem)


def load_html(path: Path, budget: ReadBudget) -> list[Section]:
    sections: list[Section] = []
    heading, lines = "", []
    for block in read_html(_read_text_file(path, budget, markup_factor=4), budget):
        if not block.text:
            continue
        if block.kind == "title":
            heading = heading or block.text
        elif block.kind == "heading":
            if lines:
                sections.append(Section(locator=heading or "本文", heading=heading, text="\n".join(lines)))
            heading, lines = block.text, []
        else:
            lines.append(block.text)
    if lines:
        sections.append(Section(locator=heading or "本文", heading=heading, text="\n".join(lines)))
    return sections


def load_markdown(path: Path, budget: ReadBudget) -> list[Section]:
    text = _read_text_file(path, budget)
    if text.startswith("---"):
        parts = text.split("---", 2)
        text = parts[2] if len(parts) == 3 else text
    return [Section(locator=s["heading"], heading=s["heading"], text=s["text"]) for s in parse_markdown_sections(text)]


def load_text(path: Path, budget: ReadBudget) -> list[Section]:
    text = _read_text_file(path, budget)
    if "\x00" in text:
        raise IngestError(f"{path.name}: テキストファイルではありません（バイナリデータを含みます）")
    return [Section(locator="本文", heading="", text=text)]


LOADERS: dict[str, Callable[[Path, ReadBudget], list[Section]]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".xlsx": load_xlsx,
    ".xlsm": load_xlsx,
    ".csv": load_csv,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
}


@dataclass(frozen=True)
class TableRow:
    where: str  # how a person finds the row: 「シート1 の 5行目」, 「5行目」, 「p.2 の 5行目」
    cells: list[str]


TABLE_SUFFIXES = (".xlsx", ".xlsm", ".csv", ".pdf")
# In a PDF's text layer, table cells are runs of text apart by a tab, two or more spaces, or a bar.
_PDF_CELL_GAP = re.compile(r"\t| {2,}|\u3000+| ?\| ?")


def _table_rows(path: Path, budget: ReadBudget) -> list[TableRow]:
    suffix = path.suffix.lower()
    rows: list[TableRow] = []
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        check_archive(path, budget.limits)
        try:
            workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
        except (InvalidFileException, KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
            raise IngestError(f"{path.name}: Excel ファイル（.xlsx）として開けません（{exc}）") from exc
        try:
            for sheet in workbook.worksheets:
                for number, cells in enumerate(_sheet_rows(sheet, budget), start=1):
                    rows.append(TableRow(f"シート「{sheet.title}」の {number}行目", cells))
        except zipfile.BadZipFile as exc:
            raise IngestError(f"{path.name}: Excel ファイルが壊れています（{exc}）") from exc
        finally:
            workbook.close()
    elif suffix == ".csv":
        for number, cells in enumerate(csv.reader(io.StringIO(_read_text_file(path, budget))), start=1):
            budget.row(len(cells))
            rows.append(TableRow(f"{number}行目", [budget.text(cell) for cell in cells]))
    else:
        for section in load_pdf(path, budget, layout=True):
            for number, line in enumerate(section.text.split("\n"), start=1):
                cells = [cell for cell in _PDF_CELL_GAP.split(line.strip()) if cell.strip()]
                budget.row(len(cells))
                rows.append(TableRow(f"{section.locator} の {number}行目", cells))
    return rows


def load_table(path: Path, max_bytes: int, limits: ReadLimits | None = None) -> list[TableRow]:
    """The rows of a table file (Excel, CSV, or a PDF whose text layer keeps the cells apart), each cell
    normalised, read within the same limits as documents; IngestError with a clear reason otherwise."""
    _check_file(path, max_bytes)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise IngestError(f"{path.name}: 表として読める形式ではありません（対応形式: {', '.join(TABLE_SUFFIXES)}）")
    rows = []
    for row in _table_rows(path, ReadBudget(path, limits or ReadLimits.defaults())):
        cells = [normalize(cell) for cell in row.cells]
        while cells and not cells[-1]:
            cells.pop()
        rows.append(TableRow(row.where, cells))
    if not any(row.cells for row in rows):
        raise IngestError(f"{path.name}: 表に値がありません")
    return rows


def _check_file(path: Path, max_bytes: int) -> None:
    if not path.exists():
        raise IngestError(f"{path}: ファイルが見つかりません")
    if not path.is_file():
        raise IngestError(f"{path}: 通常のファイルではありません")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path.name}: 空のファイルです")
    if size > max_bytes:
        raise IngestError(f"{path.name}: ファイルが大きすぎます（{size / 1e6:.1f} MB、上限 {max_bytes / 1e6:.0f} MB）")


def load_sections(path: Path, max_bytes: int, limits: ReadLimits | None = None) -> list[Section]:
    """Read one file into normalised sections, or raise IngestError with a clear reason."""
    if not path.exists():
        raise IngestError(f"{path}: ファイルが見つかりません")
    if not path.is_file():
        raise IngestError(f"{path}: 通常のファイルではありません")
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        supported = ", ".join(sorted(LOADERS))
        raise IngestError(f"{path.name}: 対応していない形式です（対応形式: {supported}）")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path.name}: 空のファイルです")
    if size > max_bytes:
        raise IngestError(f"{path.name}: ファイルが大きすぎます（{size / 1e6:.1f} MB、上限 {max_bytes / 1e6:.0f} MB）")
    sections = []
    for section in loader(path, ReadBudget(path, limits or ReadLimits.defaults())):
        text = normalize(section.text)
        if text:
            sections.append(Section(locator=normalize(section.locator) or "本文", heading=normalize(section.heading), text=text))
    if not sections:
        raise IngestError(f"{path.name}: 取り出せるテキストがありません")
    return sections
