from pathlib import Path

import pytest

from assistant.ingest.loaders import IngestError, load_sections
from tests.ingest.fixtures import (
    JAPANESE_LINES,
    make_docx,
    make_encrypted_pdf,
    make_image_only_pdf,
    make_pdf,
    make_xlsx,
)

LIMIT = 5_000_000


def _text(sections) -> str:  # noqa: ANN001
    return "\n".join(s.text for s in sections)


def test_pdf_pages_become_located_japanese_sections(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "tebiki.pdf", [JAPANESE_LINES, ["第2章 届出の受付期間は年3回です。"]])
    sections = load_sections(path, LIMIT)
    assert [s.locator for s in sections] == ["p.1", "p.2"]
    assert "届出の種類は新規、変更、中止及び届出書の差替えの4種類です。" in sections[0].text
    assert "年3回" in sections[1].text


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    sections = load_sections(make_docx(tmp_path / "qa.docx"), LIMIT)
    headings = [s.heading for s in sections]
    assert "届出の種類" in headings and "受付期間" in headings
    assert "中止の届出 | 受付期間" in _text(sections)


def test_xlsx_csv_html_markdown_text(tmp_path: Path) -> None:
    assert "事例名: 不妊治療費用の補助に関する事務" in _text(load_sections(make_xlsx(tmp_path / "cases.xlsx"), LIMIT))
    csv_path = tmp_path / "list.csv"
    csv_path.write_bytes("番号,事例名\n10,ひとり親等の医療費助成\n".encode("cp932"))
    assert "事例名: ひとり親等の医療費助成" in _text(load_sections(csv_path, LIMIT))
    html_path = tmp_path / "page.html"
    html_path.write_text(
        "<html><head><title>制度</title><script>var x=1;</script></head><body><h2>届出</h2><p>届出は年３回です。</p></body></html>",
        encoding="utf-8",
    )
    sections = load_sections(html_path, LIMIT)
    assert sections[0].heading == "届出" and "年3回" in sections[0].text and "var x" not in _text(sections)
    md_path = tmp_path / "note.md"
    md_path.write_text("# 手引\n## 受付\n差替えは随時\n", encoding="utf-8")
    assert load_sections(md_path, LIMIT)[-1].heading == "受付"
    txt_path = tmp_path / "memo.txt"
    txt_path.write_text("ＰＰＣ　への届出", encoding="utf-8")
    assert load_sections(txt_path, LIMIT)[0].text == "PPC への届出"


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (lambda p: (p.with_suffix(".exe").write_bytes(b"MZ"), p.with_suffix(".exe"))[1], "対応していない形式"),
        (lambda p: (p.write_bytes(b""), p)[1], "空のファイル"),
        (lambda p: (p.write_bytes(b"%PDF-1.4 this is not a pdf" * 10), p)[1], "壊れている"),
        (lambda p: make_encrypted_pdf(p), "暗号化"),
        (lambda p: make_image_only_pdf(p), "OCR"),
    ],
    ids=["unsupported", "empty", "corrupt", "encrypted", "no-text-layer"],
)
def test_bad_files_get_a_clear_message(tmp_path: Path, maker, message: str) -> None:  # noqa: ANN001
    path = maker(tmp_path / "doc.pdf")
    with pytest.raises(IngestError, match=message):
        load_sections(path, LIMIT)


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("あ" * 2000, encoding="utf-8")
    with pytest.raises(IngestError, match="大きすぎます"):
        load_sections(path, 1000)
