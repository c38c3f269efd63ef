"""Hostile Office files written by hand with zipfile (no binaries in the repository)."""

from __future__ import annotations

import zipfile
from pathlib import Path

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    "{overrides}</Types>"
)
_PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="{target}"/></Relationships>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
PARAGRAPH = "独自利用事務の情報連携の届出に関する記載です。"


def docx_with_paragraphs(path: Path, unpacked_bytes: int, *, numbered: bool = False) -> Path:
    """A valid DOCX whose document.xml expands to about `unpacked_bytes` of paragraphs (streamed, never in memory).

    Identical paragraphs compress like a bomb; `numbered` ones compress like a real document.
    """
    paragraph = f"<w:p><w:r><w:t>{PARAGRAPH}</w:t></w:r></w:p>".encode()
    block = paragraph * 2000
    if numbered:
        block = b"".join(f"<w:p><w:r><w:t>第{n}項 {PARAGRAPH}</w:t></w:r></w:p>".encode() for n in range(2000))
    overrides = (
        '<Override PartName="/word/document.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(overrides=overrides))
        archive.writestr("_rels/.rels", _PACKAGE_RELS.format(target="word/document.xml"))
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>'.encode())
            for number in range(max(1, unpacked_bytes // len(block))):
                member.write(block.replace("項 ".encode(), f"項の{number} ".encode()) if numbered else block)
            member.write(b"</w:body></w:document>")
    return path


def docx_with_zero_member(path: Path, zero_bytes: int) -> Path:
    """A small valid DOCX that also carries a member of `zero_bytes` zeros (compresses about 1000:1)."""
    docx_with_paragraphs(path, 10_000)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("word/media/image1.png", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(zero_bytes // len(block)):
                member.write(block)
    return path


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def xlsx(path: Path, dimension: str, rows: list[tuple[int, list[tuple[str, str]]]]) -> Path:
    """An XLSX with one sheet that declares `dimension` and holds only the given cells (inline strings)."""
    overrides = (
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    )
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{_S}" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="事例一覧" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    workbook_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>'
    )
    body = "".join(f'<row r="{number}">{"".join(_cell(ref, text) for ref, text in cells)}</row>' for number, cells in rows)
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{_S}">'
        f'<dimension ref="{dimension}"/><sheetData>{body}</sheetData></worksheet>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(overrides=overrides))
        archive.writestr("_rels/.rels", _PACKAGE_RELS.format(target="xl/workbook.xml"))
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return path


def xlsx_declaring_whole_sheet(path: Path) -> Path:
    """5 KB that claim A1:XFD1048576 (17 billion cells) but hold three."""
    return xlsx(path, "A1:XFD1048576", [(1, [("A1", "番号"), ("B1", "事例名")]), (2, [("B2", "子どもの医療費助成に関する事務")])])


def xlsx_with_far_cell(path: Path) -> Path:
    """A real cell in the last column of the last row: every row in between would be padded to 16384 columns."""
    return xlsx(path, "A1:XFD1048576", [(1, [("A1", "番号")]), (1048576, [("XFD1048576", "末尾")])])


def xlsx_with_cells(path: Path, rows: int, columns: int) -> Path:
    """A dense sheet of `rows` × `columns` real cells."""
    from openpyxl.utils import get_column_letter

    letters = [get_column_letter(c) for c in range(1, columns + 1)]
    content = [(r, [(f"{letter}{r}", f"値{r}") for letter in letters]) for r in range(1, rows + 1)]
    return xlsx(path, f"A1:{letters[-1]}{rows}", content)
