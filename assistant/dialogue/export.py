"""Documents a user takes away: the 事前相談シート (Markdown, DOCX, PDF) and plain reply drafts (text, DOCX).

The sheet is laid out once, as a list of blocks (`sheet_blocks`), and each format renders those blocks,
so the three files always say the same. Every file is written whole or not at all
(`assistant.files.atomic_output`), and text that XML cannot hold (control codes, lone surrogates) is
dropped before it reaches a DOCX or PDF.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

from assistant.files import atomic_output, write_text_atomic
from assistant.validation import InputError, clean_text

STATUS_DONE = "済"
STATUS_TODO = "未"
STATUS_CHECK = "要確認"
STATUS_NOT_APPLICABLE = "対象外"
SHEET_TITLE = "事前相談シート（独自利用事務の情報連携）"
SHEET_SUBJECT = "独自利用事務の情報連携に関する事前相談"
SHEET_NOTE = "※ 【要確認】の事項は、出典で確認できていないか、回答が未確定のものです。最新の手引・通知または委員会事務局でご確認ください。"
MAX_CONTACT_CHARS = 100
MAX_PROPERTY_CHARS = 255
A4_MM = (210, 297)
MARGIN_MM = 18
DOCX_FONT = "游ゴシック"  # a Japanese font found on the office PCs that open these files


@dataclass
class SheetItem:
    phase: str
    label: str
    status: str
    answer: str
    question: str
    citation: int | None = None


@dataclass
class Sheet:
    """The 事前相談シート's content. `open_questions` are the points to confirm with the commission."""

    session_id: str
    date: str
    affair: list[tuple[str, str]]
    case_title: str
    case_reasoning: list[str]
    notification_title: str
    notification_reasoning: list[str]
    items: list[SheetItem]
    schedule: list[str]
    open_questions: list[str]
    citations: list[dict[str, Any]] = field(default_factory=list)
    municipality: str = ""
    department: str = ""
    person: str = ""  # the stored (masked) answer, or the name given when the sheet is written
    contact: str = ""  # likewise
    own_questions: list[str] = field(default_factory=list)  # what the municipality asks the commission
    open_points: list[str] = field(default_factory=list)  # what the municipality still has to settle itself
    not_applicable: list[str] = field(default_factory=list)  # checklist items the earlier answers made moot
    not_applicable_reason: str = ""

    def phases(self) -> list[tuple[str, list[SheetItem]]]:
        grouped: dict[str, list[SheetItem]] = {}
        for item in self.items:
            grouped.setdefault(item.phase, []).append(item)
        return list(grouped.items())

    @property
    def author(self) -> str:
        """The document's author property: the municipality and department (never the person)."""
        return " ".join(part for part in (self.municipality, self.department) if part)

    @property
    def title(self) -> str:
        name = next((value for label, value in self.affair if label == "事務の名称" and not value.startswith("（")), "")
        return f"事前相談シート（{name}）" if name else "事前相談シート"


# -- the layout, shared by every format ------------------------------------------------------------
@dataclass(frozen=True)
class Heading:
    text: str
    level: int  # 0 = the title


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    numbered: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...]  # relative column widths
    form: bool = False  # a form's fields (label, value): Markdown shows them as a list


Block = Heading | Para | Bullets | Table


def _ref(number: int | None) -> str:
    return f" [{number}]" if number else ""


def citation_line(number: int, c: dict[str, Any]) -> str:
    return f"[{number}] {c['title']}（{c['locator']}、{c['as_of']}時点、{c['confidence']}）「{c['quote']}」"


def sheet_blocks(sheet: Sheet) -> list[Block]:
    blocks: list[Block] = [
        Heading(SHEET_TITLE, 0),
        Table(
            ("項目", "内容"),
            (
                ("作成日", sheet.date),
                ("団体名", sheet.municipality),
                ("担当部署", sheet.department),
                ("担当者", sheet.person),
                ("連絡先", sheet.contact),
                ("セッション", sheet.session_id),
            ),
            (1, 4),
            form=True,
        ),
        Heading("1. 事務の概要", 1),
        Table(("項目", "内容"), tuple((label, value) for label, value in sheet.affair), (1, 4)),
        Heading("2. 当てはまる事例と判断理由", 1),
        Para(sheet.case_title),
        Bullets(tuple(sheet.case_reasoning)),
        Heading("3. 届出の種類", 1),
        Para(sheet.notification_title),
        Bullets(tuple(sheet.notification_reasoning)),
        Heading("4. 個人情報保護委員会への確認事項", 1),
    ]
    if sheet.own_questions:
        blocks += [Heading("団体からの質問", 2), Bullets(tuple(sheet.own_questions), numbered=True)]
    if sheet.open_questions:
        blocks += [Heading("チェックリストで要確認となった点", 2), Bullets(tuple(sheet.open_questions), numbered=True)]
    if not sheet.own_questions and not sheet.open_questions:
        blocks.append(Para("（なし）"))
    blocks.append(Heading("5. チェックリストの状況", 1))
    for phase, items in sheet.phases():
        rows = tuple((i.status, f"{i.label}{_ref(i.citation)}", i.answer) for i in items)
        blocks += [Heading(phase, 2), Table(("状況", "項目", "回答"), rows, (0.8, 2.6, 4))]
    if sheet.not_applicable:
        reason = f"（{sheet.not_applicable_reason}）" if sheet.not_applicable_reason else ""
        blocks.append(Para(f"対象外とした項目{reason}: {'、'.join(sheet.not_applicable)}"))
    blocks += [
        Heading("6. 団体で確認・対応する事項", 1),
        Bullets(tuple(sheet.open_points)) if sheet.open_points else Para("（なし）"),
        Heading("7. スケジュール", 1),
        Bullets(tuple(sheet.schedule)),
        Heading("8. 出典", 1),
        Bullets(tuple(citation_line(n, c) for n, c in enumerate(sheet.citations, start=1))),
        Para(SHEET_NOTE),
    ]
    return blocks


# -- Markdown ----------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "｜").replace("\n", " ") or "　"


def blocks_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * (block.level + 1)} {block.text}", ""]
        elif isinstance(block, Para):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            if block.items:
                marks = [f"{n}." if block.numbered else "-" for n in range(1, len(block.items) + 1)]
                lines += [f"{mark} {item}" for mark, item in zip(marks, block.items)] + [""]
        elif block.form:
            lines += [f"- {label}: {value}" for label, value in block.rows] + [""]
        else:
            lines += [
                "| " + " | ".join(block.header) + " |",
                "| " + " | ".join("---" for _ in block.header) + " |",
                *["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows],
                "",
            ]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_sheet_markdown(sheet: Sheet) -> str:
    return blocks_markdown(sheet_blocks(sheet))


# -- DOCX ----------------------------------------------------------------------------------------------
def _new_document(title: str, author: str = "", subject: str = "") -> Any:
    """An A4 document in Japanese, with our own properties (not the template's author and 2013 dates)."""
    document = Document()
    style = document.styles["Normal"]
    style.font.size = Pt(10.5)
    style.font.name = DOCX_FONT
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), DOCX_FONT)
    for section in document.sections:
        section.page_width, section.page_height = Mm(A4_MM[0]), Mm(A4_MM[1])
        section.left_margin = section.right_margin = Mm(MARGIN_MM + 2)
        section.top_margin = section.bottom_margin = Mm(MARGIN_MM)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    properties = document.core_properties
    properties.title = _property(title)
    properties.subject = _property(subject)
    properties.author = _property(author)
    properties.last_modified_by = _property(author)
    properties.created = properties.modified = now
    properties.revision = 1
    properties.language = "ja-JP"
    properties.keywords = properties.comments = properties.category = ""
    return document


def _property(text: str) -> str:
    """A document property: OOXML core properties hold at most 255 characters."""
    text = clean_text(text)
    return text if len(text) <= MAX_PROPERTY_CHARS else text[: MAX_PROPERTY_CHARS - 1] + "…"


def _docx_table(document: Any, table: Table) -> None:
    grid = document.add_table(rows=0 if table.form else 1, cols=len(table.header))
    grid.style = "Table Grid"
    if not table.form:
        for cell, text in zip(grid.rows[0].cells, table.header):
            cell.text = clean_text(text)
            for run in cell.paragraphs[0].runs:
                run.bold = True
    usable = A4_MM[0] - 2 * (MARGIN_MM + 2)
    widths = [Mm(usable * w / sum(table.widths)) for w in table.widths]
    for row in table.rows:
        cells = grid.add_row().cells
        for index, (cell, text) in enumerate(zip(cells, row)):
            cell.text = clean_text(text)
            if table.form and index == 0:
                for run in cell.paragraphs[0].runs:
                    run.bold = True
    for row in grid.rows:
        for cell, width in zip(row.cells, widths):
            cell.width = width


def _docx_heading(document: Any, heading: Heading) -> None:
    paragraph = document.add_heading(clean_text(heading.text), level=heading.level)
    for run in paragraph.runs:
        run.font.name = DOCX_FONT
        run.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), DOCX_FONT)
        run.font.color.rgb = RGBColor(0x1F, 0x2A, 0x44)
    if heading.level == 0:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for run in paragraph.runs:
            run.font.size = Pt(16)


def _docx_blocks(document: Any, blocks: list[Block]) -> None:
    for block in blocks:
        if isinstance(block, Heading):
            _docx_heading(document, block)
        elif isinstance(block, Para):
            document.add_paragraph(clean_text(block.text))
        elif isinstance(block, Bullets):
            style = "List Number" if block.numbered else "List Bullet"
            for item in block.items:
                document.add_paragraph(clean_text(item), style=style)
        else:
            _docx_table(document, block)


def write_sheet_docx(sheet: Sheet, output: Path) -> Path:
    document = _new_document(sheet.title, sheet.author, SHEET_SUBJECT)
    _docx_blocks(document, sheet_blocks(sheet))
    return _save(document, output)


def write_sheet_pdf(sheet: Sheet, output: Path) -> Path:
    from assistant.dialogue.sheet_pdf import render_pdf  # reportlab is loaded only when a PDF is asked for

    data = render_pdf(sheet_blocks(sheet), title=sheet.title, author=sheet.author, subject=SHEET_SUBJECT)
    with atomic_output(Path(output)) as handle:
        handle.write(data)
    return Path(output)


def write_text(text: str, output: Path) -> Path:
    """Text as UTF-8, ending in a line break; replaces `output` only once it is complete."""
    text = clean_text(text)
    return write_text_atomic(Path(output), text if text.endswith("\n") else text + "\n")


_HEADING = re.compile(r"^(■|#{1,3}\s)")


def write_text_docx(text: str, output: Path, title: str) -> Path:
    """A plain document: one paragraph per line, ■ / # lines as headings."""
    document = _new_document(title)
    _docx_heading(document, Heading(title, 1))
    for line in text.split("\n"):
        if _HEADING.match(line):
            _docx_heading(document, Heading(_HEADING.sub("", line).strip(), 2))
        else:
            document.add_paragraph(clean_text(line))
    return _save(document, output)


def _save(document: Any, output: Path) -> Path:
    output = Path(output)
    buffer = io.BytesIO()  # the whole archive first, so a failing disk never sees a half-built one
    document.save(buffer)
    with atomic_output(output) as handle:
        handle.write(buffer.getvalue())
    return output


def check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    value = (fmt or "").strip().lower().lstrip(".")
    if value not in allowed:
        raise InputError(f"書き出し形式は {' / '.join(allowed)} のいずれかを指定してください（指定: {fmt!r}）")
    return value


def clean_contact_field(value: str | None, label: str) -> str:
    """A person's name or contact as it is placed on the sheet: one line, no control codes, bounded."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{label}は文字列で入力してください")
    text = re.sub(r"\s+", " ", clean_text(value)).strip()
    if len(text) > MAX_CONTACT_CHARS:
        raise InputError(f"{label}は {MAX_CONTACT_CHARS} 文字以内で入力してください（{len(text)} 文字）")
    return text
