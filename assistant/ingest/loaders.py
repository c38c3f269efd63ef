"""File → sections of text with a locator (page, sheet, heading). One function per format."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.knowledge.loader import parse_markdown_sections
from assistant.textnorm import normalize


class IngestError(ValueError):
    """A document cannot be ingested; the message says why, in Japanese, for the user."""


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


def load_pdf(path: Path) -> list[Section]:
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
        pages = list(reader.pages)
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{path.name}: PDF が壊れているか、PDF ではありません（{exc}）") from exc
    sections = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except (FileNotDecryptedError,) as exc:
            raise IngestError(f"{path.name}: 暗号化された PDF のため読み込めません（{exc}）") from exc
        except Exception as exc:  # pypdf raises many types on damaged content streams
            raise IngestError(f"{path.name}: {number}ページ目のテキストを取り出せません（{exc}）") from exc
        if text.strip():
            sections.append(Section(locator=f"p.{number}", heading="", text=text))
    if pages and not sections:
        raise IngestError(f"{path.name}: テキスト層のない PDF です（画像のみ）。OCR でテキスト化してから登録してください")
    return sections


def load_docx(path: Path) -> list[Section]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise IngestError(f"{path.name}: Word ファイル（.docx）として開けません（{exc}）") from exc
    sections: list[Section] = []
    heading, lines = "", []
    number = 0

    def flush() -> None:
        nonlocal number
        if "".join(lines).strip():
            number += 1
            sections.append(Section(locator=f"§{number} {heading}".strip(), heading=heading, text="\n".join(lines)))

    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")) or style.startswith("見出し"):
            flush()
            heading, lines = paragraph.text.strip(), []
        elif paragraph.text.strip():
            lines.append(paragraph.text)
    flush()
    for table_number, table in enumerate(document.tables, start=1):
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        if any(r.strip(" |") for r in rows):
            sections.append(Section(locator=f"表{table_number}", heading=f"表{table_number}", text="\n".join(rows)))
    return sections


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


def load_xlsx(path: Path) -> list[Section]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise IngestError(f"{path.name}: Excel ファイル（.xlsx）として開けません（{exc}）") from exc
    import zipfile

    try:
        sections = []
        for sheet in workbook.worksheets:
            rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            sections.extend(_rows_to_sections(rows, sheet.title))
    except zipfile.BadZipFile as exc:
        raise IngestError(f"{path.name}: Excel ファイルが壊れています（{exc}）") from exc
    finally:
        workbook.close()
    return sections


def load_csv(path: Path) -> list[Section]:
    text = _decode(path.read_bytes(), path)
    rows = list(csv.reader(io.StringIO(text)))
    return _rows_to_sections(rows, path.stem)


def load_html(path: Path) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path.read_bytes(), path), "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "noscript"]):
        tag.decompose()
    sections: list[Section] = []
    heading, lines = (soup.title.get_text(strip=True) if soup.title else ""), []
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "p", "li", "td", "th", "pre", "dd", "dt"]):
        if element.find(["p", "li", "td"]) is not None and element.name in {"li", "td"}:
            continue
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name in {"h1", "h2", "h3", "h4"}:
            if lines:
                sections.append(Section(locator=heading or "本文", heading=heading, text="\n".join(lines)))
            heading, lines = text, []
        else:
            lines.append(text)
    if lines:
        sections.append(Section(locator=heading or "本文", heading=heading, text="\n".join(lines)))
    return sections


def load_markdown(path: Path) -> list[Section]:
    text = _decode(path.read_bytes(), path)
    if text.startswith("---"):
        parts = text.split("---", 2)
        text = parts[2] if len(parts) == 3 else text
    return [Section(locator=s["heading"], heading=s["heading"], text=s["text"]) for s in parse_markdown_sections(text)]


def load_text(path: Path) -> list[Section]:
    text = _decode(path.read_bytes(), path)
    if "\x00" in text:
        raise IngestError(f"{path.name}: テキストファイルではありません（バイナリデータを含みます）")
    return [Section(locator="本文", heading="", text=text)]


LOADERS: dict[str, Callable[[Path], list[Section]]] = {
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


def load_sections(path: Path, max_bytes: int) -> list[Section]:
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
    for section in loader(path):
        text = normalize(section.text)
        if text:
            sections.append(Section(locator=normalize(section.locator) or "本文", heading=normalize(section.heading), text=text))
    if not sections:
        raise IngestError(f"{path.name}: 取り出せるテキストがありません")
    return sections
