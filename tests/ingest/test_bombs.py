"""Decompression bombs and absurd sheets are refused (or read) in bounded memory and time.

Each hostile file is read in a subprocess whose address space is capped, so a regression fails
with a MemoryError or a timeout instead of exhausting the machine; the subprocess reports its
peak resident memory (VmHWM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ingest import hostile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ADDRESS_SPACE_CAP = 2 << 30  # 2 GiB: far above what a bounded reader needs
PEAK_RSS_LIMIT_MB = 600
TIMEOUT_SECONDS = 120

_READER = """
import json, resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from assistant.ingest.loaders import IngestError, load_sections
started = time.perf_counter()
try:
    sections = load_sections(Path(sys.argv[1]), 50_000_000)
    outcome = {{"refused": False, "text": "\\n".join(s.text for s in sections)[:2000]}}
except IngestError as exc:
    outcome = {{"refused": True, "message": str(exc)}}
outcome["seconds"] = time.perf_counter() - started
# VmHWM belongs to this program's memory map (ru_maxrss would include the parent's pages from before exec).
status = Path("/proc/self/status").read_text()
outcome["peak_rss_mb"] = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
print(json.dumps(outcome, ensure_ascii=False))
"""


def read_in_subprocess(path: Path) -> dict:
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", _READER.format(cap=ADDRESS_SPACE_CAP), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"{path.name}: {outcome['seconds']:.2f} s, peak RSS {outcome['peak_rss_mb']:.0f} MB")
    assert outcome["peak_rss_mb"] < PEAK_RSS_LIMIT_MB
    return outcome


def test_xlsx_declaring_a_whole_sheet_reads_only_its_real_cells(tmp_path: Path) -> None:
    path = hostile.xlsx_declaring_whole_sheet(tmp_path / "dimension.xlsx")
    assert path.stat().st_size < 5_000
    outcome = read_in_subprocess(path)
    assert not outcome["refused"]
    assert "子どもの医療費助成に関する事務" in outcome["text"]
    assert outcome["seconds"] < 10


def test_xlsx_with_a_cell_at_the_far_corner_is_refused(tmp_path: Path) -> None:
    outcome = read_in_subprocess(hostile.xlsx_with_far_cell(tmp_path / "corner.xlsx"))
    assert outcome["refused"] and "上限" in outcome["message"] and "corner.xlsx" in outcome["message"]


def test_docx_expanding_beyond_the_xml_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = hostile.docx_with_paragraphs(tmp_path / "paragraphs.docx", 60_000_000)
    outcome = read_in_subprocess(path)
    assert outcome["refused"] and "展開後" in outcome["message"]
    assert outcome["seconds"] < 2


def test_zip_member_with_an_absurd_compression_ratio_is_refused(tmp_path: Path) -> None:
    outcome = read_in_subprocess(hostile.docx_with_zero_member(tmp_path / "zeros.docx", 100_000_000))
    assert outcome["refused"] and "圧縮率" in outcome["message"]


def test_huge_html_page_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    paragraph = f"<p>{hostile.PARAGRAPH}</p>\n"
    path.write_text("<html><body>" + paragraph * (11_000_000 // len(paragraph)) + "</body></html>", encoding="utf-8")
    outcome = read_in_subprocess(path)
    assert outcome["refused"] and "文字数が上限" in outcome["message"]
    assert outcome["seconds"] < 10


def test_sheet_and_text_limits_stop_reading(tmp_path: Path) -> None:
    from assistant.config import load_settings
    from assistant.ingest.limits import ReadLimits
    from assistant.ingest.loaders import IngestError, load_sections

    settings = load_settings(home=tmp_path, max_sheet_cells=100, max_sheet_columns=8, max_document_chars=400)
    limits = ReadLimits.from_settings(settings)
    with pytest.raises(IngestError, match="セル数が上限"):
        load_sections(hostile.xlsx_with_cells(tmp_path / "cells.xlsx", rows=30, columns=5), 50_000_000, limits)
    with pytest.raises(IngestError, match="列数が上限"):
        load_sections(hostile.xlsx_with_cells(tmp_path / "wide.xlsx", rows=2, columns=9), 50_000_000, limits)
    long_text = tmp_path / "long.txt"
    long_text.write_text("届出" * 300, encoding="utf-8")
    with pytest.raises(IngestError, match="文字数が上限"):
        load_sections(long_text, 50_000_000, limits)
    csv_path = tmp_path / "wide.csv"
    csv_path.write_text(",".join(["値"] * 9) + "\n", encoding="utf-8")
    with pytest.raises(IngestError, match="列数が上限"):
        load_sections(csv_path, 50_000_000, limits)
    docx_path = hostile.docx_with_paragraphs(tmp_path / "many.docx", 100_000)
    with pytest.raises(IngestError, match="文字数が上限"):
        load_sections(docx_path, 50_000_000, limits)


def test_a_refused_upload_is_reported_by_the_document_store(tmp_path: Path) -> None:
    from assistant.ingest.docstore import DocumentStore

    store = DocumentStore(tmp_path / "docs")
    result = store.ingest(hostile.docx_with_paragraphs(tmp_path / "bomb.docx", 60_000_000))
    assert result.status == "error" and "展開後" in result.message
    assert store.records() == []


@pytest.mark.slow
def test_gigabyte_docx_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """The reported case: a few MB of DOCX whose paragraphs expand to more than 1 GB."""
    path = hostile.docx_with_paragraphs(tmp_path / "bomb.docx", 1_200_000_000)
    assert path.stat().st_size < 10_000_000
    outcome = read_in_subprocess(path)
    assert outcome["refused"] and "展開後" in outcome["message"]
    assert outcome["seconds"] < 5


@pytest.mark.slow
def test_worst_docx_under_the_archive_limits_stays_bounded(tmp_path: Path) -> None:
    """Just under the XML limit the whole document is parsed; the text limit then stops the reading."""
    path = hostile.docx_with_paragraphs(tmp_path / "largest.docx", 24_000_000, numbered=True)
    outcome = read_in_subprocess(path)
    assert outcome["refused"] and "文字数が上限" in outcome["message"]
    assert outcome["seconds"] < 60
