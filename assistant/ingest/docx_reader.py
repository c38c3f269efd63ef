"""Word (.docx) text read as a stream: paragraphs with their style names, and tables.

python-docx parses the whole document into memory first (a 50 MB document.xml takes 400 MB and
40 s before the first paragraph can be counted), so the main part is read with lxml's iterparse
and every finished block is dropped at once. Reading stops at the first limit of the budget.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from assistant.ingest.errors import IngestError
from assistant.ingest.limits import ReadBudget

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_TEXT_TAGS = (f"{W}t", f"{W}tab", f"{W}br", f"{W}cr")
_BODY_CONTAINERS = {f"{W}body", f"{W}sdtContent"}


@dataclass
class Paragraph:
    style: str
    text: str


@dataclass
class Table:
    rows: list[list[str]] = field(default_factory=list)


def _parser_options() -> dict[str, bool]:
    # No entity expansion and no network: a document is data, not a program.
    return {"resolve_entities": False, "no_network": True, "huge_tree": False}


def _main_part(archive: zipfile.ZipFile) -> str:
    try:
        rels = etree.fromstring(archive.read("_rels/.rels"), etree.XMLParser(**_parser_options()))
    except KeyError:
        return "word/document.xml"
    for rel in rels.iter(_REL):
        if rel.get("Type") == _OFFICE_DOCUMENT:
            return posixpath.normpath(rel.get("Target", "word/document.xml").lstrip("/"))
    return "word/document.xml"


def _style_names(archive: zipfile.ZipFile, main: str) -> dict[str, str]:
    """Style id → style name (built-in names are stored in English, e.g. "heading 1")."""
    name = posixpath.join(posixpath.dirname(main), "styles.xml")
    try:
        styles = etree.fromstring(archive.read(name), etree.XMLParser(**_parser_options()))
    except KeyError:
        return {}
    names = {}
    for style in styles.iter(f"{W}style"):
        label = style.find(f"{W}name")
        if label is not None:
            names[style.get(f"{W}styleId", "")] = label.get(f"{W}val", "")
    return names


def _paragraph_text(element: etree._Element) -> str:
    parts = []
    for node in element.iter(*_TEXT_TAGS):
        if node.tag == f"{W}t":
            parts.append(node.text or "")
        elif node.tag == f"{W}tab":
            parts.append("\t")
        else:
            parts.append("\n")
    return "".join(parts)


def _paragraph_style(element: etree._Element, styles: dict[str, str]) -> str:
    style = element.find(f"{W}pPr/{W}pStyle")
    if style is None:
        return ""
    style_id = style.get(f"{W}val", "")
    return styles.get(style_id, style_id)


def _drop(element: etree._Element) -> None:
    """Free a finished block and the siblings before it."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def read_docx(path: Path, budget: ReadBudget) -> Iterator[Paragraph | Table]:
    """Body paragraphs and top-level tables, in document order."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"{path.name}: Word ファイル（.docx）として開けません（{exc}）") from exc
    with archive:
        main = _main_part(archive)
        try:
            styles = _style_names(archive, main)
            stream = archive.open(main)
        except (KeyError, etree.XMLSyntaxError) as exc:
            raise IngestError(f"{path.name}: Word ファイル（.docx）として開けません（{exc}）") from exc
        with stream:
            yield from _blocks(stream, styles, budget)


def _blocks(stream, styles: dict[str, str], budget: ReadBudget) -> Iterator[Paragraph | Table]:  # noqa: ANN001
    path_tags: list[str] = []
    table: Table | None = None
    table_depth = 0
    row: list[str] | None = None
    cell: list[str] | None = None
    try:
        for event, element in etree.iterparse(stream, events=("start", "end"), **_parser_options()):
            tag = element.tag
            if event == "start":
                path_tags.append(tag)
                if tag == f"{W}tbl":
                    table_depth += 1
                    if table_depth == 1:
                        table = Table()
                elif table_depth == 1 and tag == f"{W}tr":
                    row = []
                elif table_depth == 1 and tag == f"{W}tc":
                    cell = []
                continue
            path_tags.pop()
            parent = path_tags[-1] if path_tags else ""
            if tag == f"{W}p":
                if cell is not None and table_depth >= 1:
                    if parent == f"{W}tc":
                        cell.append(budget.text(_paragraph_text(element)))
                elif table_depth == 0 and parent in _BODY_CONTAINERS:
                    yield Paragraph(_paragraph_style(element, styles), budget.text(_paragraph_text(element)))
                    _drop(element)
            elif tag == f"{W}tc" and table_depth == 1 and row is not None and cell is not None:
                row.append("\n".join(cell))
                cell = None
            elif tag == f"{W}tr" and table_depth == 1 and table is not None and row is not None:
                budget.row(len(row))
                table.rows.append(row)
                row = None
            elif tag == f"{W}tbl":
                table_depth -= 1
                if table_depth == 0 and table is not None:
                    yield table
                    table = None
                    _drop(element)
    except etree.XMLSyntaxError as exc:
        raise IngestError(f"{budget.name}: Word ファイルの本文が壊れています（{exc}）") from exc
