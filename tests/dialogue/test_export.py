"""Exports are written whole or not at all, and text XML cannot hold never breaks a DOCX."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document

from assistant.dialogue.export import Sheet, SheetItem, render_sheet_markdown, write_sheet_docx, write_text, write_text_docx
from assistant.validation import ServiceError
from tests.full_disk import fill_disk_after


def _sheet(answer: str = "済ませました") -> Sheet:
    return Sheet(
        session_id="s1",
        date="2026-01-05",
        affair=[("事務の名称", "子ども医療費助成事務")],
        case_title="事例(1)",
        case_reasoning=["対象者と目的が一致します"],
        notification_title="新規の届出",
        notification_reasoning=[],
        items=[SheetItem("事前準備", "番号利用条例への追加", "済", answer, "条例に追加しましたか？")] * 200,
        schedule=["連携開始の希望時期: 2026年10月"],
        open_questions=[],
    )


WRITERS = {
    "sheet.md": lambda path: write_text(render_sheet_markdown(_sheet()), path),
    "sheet.docx": lambda path: write_sheet_docx(_sheet(), path),
    "reply.txt": lambda path: write_text("回答案\n" * 5000, path),
    "reply.docx": lambda path: write_text_docx("■ 回答\n" + "届出は不要です。\n" * 2000, path, "回答案"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_full_disk_leaves_no_truncated_export(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_disk_after(monkeypatch)
    with pytest.raises(ServiceError, match="空き容量"):
        WRITERS[name](tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_full_disk_keeps_the_previous_export(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / name
    target.write_bytes(b"previous export")
    fill_disk_after(monkeypatch)
    with pytest.raises(ServiceError):
        WRITERS[name](target)
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_control_characters_never_break_a_docx(tmp_path: Path) -> None:
    sheet_path = write_sheet_docx(_sheet("はい\x00\x07\x1b済み\udc80"), tmp_path / "sheet.docx")
    cells = {c.text for t in Document(str(sheet_path)).tables for r in t.rows for c in r.cells}
    assert "はい済み" in cells
    reply_path = write_text_docx("お問い合わせ\x0cの件\x00です", tmp_path / "reply.docx", "回答案\x01")
    paragraphs = [p.text for p in Document(str(reply_path)).paragraphs]
    assert paragraphs == ["回答案", "お問い合わせの件です"]
    text_path = write_text("本文\x00です", tmp_path / "reply.txt")
    assert text_path.read_text(encoding="utf-8") == "本文です\n"


def test_long_names_fit_the_document_properties(tmp_path: Path) -> None:
    sheet = _sheet()
    sheet.municipality, sheet.department = "〇〇市" * 60, "こども家庭課" * 40
    sheet.affair = [("事務の名称", "子ども医療費助成事務" * 40)]
    properties = Document(str(write_sheet_docx(sheet, tmp_path / "sheet.docx"))).core_properties
    assert properties.author.startswith("〇〇市〇〇市") and len(properties.author) <= 255
    assert properties.title.startswith("事前相談シート（子ども医療費助成事務") and len(properties.title) <= 255
    assert len(properties.last_modified_by) <= 255
