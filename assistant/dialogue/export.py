"""Documents a user takes away: the 事前相談シート (Markdown, DOCX) and plain reply drafts (text, DOCX).

Every file is written whole or not at all (`assistant.files.atomic_output`), and text that XML
cannot hold (control codes, lone surrogates) is dropped before it reaches a DOCX.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docx import Document
from docx.shared import Pt

from assistant.files import atomic_output, write_text_atomic
from assistant.validation import InputError, clean_text

STATUS_DONE = "済"
STATUS_TODO = "未"
STATUS_CHECK = "要確認"


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

    def phases(self) -> list[tuple[str, list[SheetItem]]]:
        grouped: dict[str, list[SheetItem]] = {}
        for item in self.items:
            grouped.setdefault(item.phase, []).append(item)
        return list(grouped.items())


def _ref(number: int | None) -> str:
    return f" [{number}]" if number else ""


def _cell(text: str) -> str:
    return text.replace("|", "｜").replace("\n", " ")


def citation_line(number: int, c: dict[str, Any]) -> str:
    return f"[{number}] {c['title']}（{c['locator']}、{c['as_of']}時点、{c['confidence']}）「{c['quote']}」"


def render_sheet_markdown(sheet: Sheet) -> str:
    lines = [
        "# 事前相談シート（独自利用事務の情報連携）",
        "",
        f"- 作成日: {sheet.date}",
        f"- セッション: {sheet.session_id}",
        "",
        "## 1. 事務の概要",
        "",
        "| 項目 | 内容 |",
        "| --- | --- |",
        *[f"| {_cell(label)} | {_cell(value)} |" for label, value in sheet.affair],
        "",
        "## 2. 当てはまる事例と判断理由",
        "",
        sheet.case_title,
        *[f"- {reason}" for reason in sheet.case_reasoning],
        "",
        "## 3. 届出の種類",
        "",
        sheet.notification_title,
        *[f"- {reason}" for reason in sheet.notification_reasoning],
        "",
        "## 4. チェックリストの状況",
    ]
    for phase, items in sheet.phases():
        lines += ["", f"### {phase}", "", "| 状況 | 項目 | 回答 |", "| --- | --- | --- |"]
        lines += [f"| {item.status} | {_cell(item.label)}{_ref(item.citation)} | {_cell(item.answer)} |" for item in items]
    lines += ["", "## 5. スケジュール", "", *[f"- {entry}" for entry in sheet.schedule]]
    lines += ["", "## 6. 個人情報保護委員会への確認事項", ""]
    lines += [f"- {q}" for q in sheet.open_questions] or ["- （なし）"]
    lines += ["", "## 7. 出典", ""]
    lines += [f"- {citation_line(n, c)}" for n, c in enumerate(sheet.citations, start=1)]
    lines += ["", "※ 【要確認】の事項は、出典で確認できていないか、回答が未確定のものです。最新の手引・通知または委員会事務局でご確認ください。"]
    return "\n".join(lines) + "\n"


def _table(document: Any, header: list[str], rows: list[list[str]]) -> None:
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header):
        cell.text = clean_text(text)
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for row in rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, row):
            cell.text = clean_text(text)


def _paragraph(document: Any, text: str, style: str | None = None) -> None:
    document.add_paragraph(clean_text(text), style=style)


def _heading(document: Any, text: str, level: int) -> None:
    document.add_heading(clean_text(text), level=level)


def _new_document() -> Any:
    document = Document()
    style = document.styles["Normal"]
    style.font.size = Pt(10.5)
    style.font.name = "IPAexGothic"
    return document


def write_sheet_docx(sheet: Sheet, output: Path) -> Path:
    document = _new_document()
    _heading(document, "事前相談シート（独自利用事務の情報連携）", 0)
    _paragraph(document, f"作成日: {sheet.date}　セッション: {sheet.session_id}")
    _heading(document, "1. 事務の概要", 1)
    _table(document, ["項目", "内容"], [[label, value] for label, value in sheet.affair])
    _heading(document, "2. 当てはまる事例と判断理由", 1)
    _paragraph(document, sheet.case_title)
    for reason in sheet.case_reasoning:
        _paragraph(document, reason, "List Bullet")
    _heading(document, "3. 届出の種類", 1)
    _paragraph(document, sheet.notification_title)
    for reason in sheet.notification_reasoning:
        _paragraph(document, reason, "List Bullet")
    _heading(document, "4. チェックリストの状況", 1)
    for phase, items in sheet.phases():
        _heading(document, phase, 2)
        _table(document, ["状況", "項目", "回答"], [[i.status, f"{i.label}{_ref(i.citation)}", i.answer] for i in items])
    _heading(document, "5. スケジュール", 1)
    for entry in sheet.schedule:
        _paragraph(document, entry, "List Bullet")
    _heading(document, "6. 個人情報保護委員会への確認事項", 1)
    for question in sheet.open_questions or ["（なし）"]:
        _paragraph(document, question, "List Bullet")
    _heading(document, "7. 出典", 1)
    for number, citation in enumerate(sheet.citations, start=1):
        _paragraph(document, citation_line(number, citation))
    _paragraph(document, "※ 【要確認】の事項は、出典で確認できていないか、回答が未確定のものです。最新の手引・通知または委員会事務局でご確認ください。")
    return _save(document, output)


def write_text(text: str, output: Path) -> Path:
    """Text as UTF-8, ending in a line break; replaces `output` only once it is complete."""
    text = clean_text(text)
    return write_text_atomic(Path(output), text if text.endswith("\n") else text + "\n")


_HEADING = re.compile(r"^(■|#{1,3}\s)")


def write_text_docx(text: str, output: Path, title: str) -> Path:
    """A plain document: one paragraph per line, ■ / # lines as headings."""
    document = _new_document()
    _heading(document, title, 1)
    for line in text.split("\n"):
        if _HEADING.match(line):
            _heading(document, _HEADING.sub("", line).strip(), 2)
        else:
            _paragraph(document, line)
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
