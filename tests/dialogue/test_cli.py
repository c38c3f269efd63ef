"""`assistant chat` and `assistant checklist` as separate processes (the machine interface contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docx import Document

from tests.caches import link_model_caches
from tests.dialogue.consultation import CONSULTATION_TURNS

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CONSULTATION = [
    *CONSULTATION_TURNS,
    ("連絡先は 03-1234-5678 です。マイナンバーカードを紛失しました", lambda r: r["out_of_scope"] and "phone" in r["masked"]),
]
ASK_KEYS = {"answer", "notification_type", "cases", "statutory", "out_of_scope", "needs_clarification", "clarifying_question", "citations"}


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    link_model_caches(shared_cache, home / "cache")
    return home


def _run(home: Path, *args: str) -> dict:
    env = os.environ | {"ASSISTANT_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("ASSISTANT_CONFIG", None)
    env.pop("ASSISTANT_DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.slow
def test_ten_turn_consultation_across_processes(cli_home: Path) -> None:
    for number, (message, check) in enumerate(CONSULTATION, start=1):
        result = _run(cli_home, "chat", "--session", "cli-consult", "--message", message, "--json")
        assert ASK_KEYS <= set(result)
        assert result["session"] == "cli-consult" and result["turn"] == number
        assert check(result), (message, result["rewritten_question"])
    database = (cli_home / "assistant.db").read_bytes()
    assert b"03-1234-5678" not in database


@pytest.mark.slow
def test_checklist_across_processes_and_export(cli_home: Path, tmp_path: Path) -> None:
    started = _run(cli_home, "checklist", "--session", "cli-check", "--json")
    assert set(started) >= {"session", "step", "question", "progress", "finished"}
    assert started["step"] == "profile-municipality" and started["progress"]["done"] == 0
    for answer in ("〇〇市", "こども家庭課", "山田 太郎", "03-5511-7729",
                   "子ども医療費助成事務", "スキップ", "戻る", "子ども医療費助成条例"):
        result = _run(cli_home, "checklist", "--session", "cli-check", "--answer", answer, "--json")
    assert result["step"] == "affair-body" and result["progress"]["done"] == 6
    exported = _run(cli_home, "checklist", "--session", "cli-check", "--export", "docx", "--output", str(tmp_path / "sheet.docx"), "--json")
    cells = [c.text for t in Document(exported["output"]).tables for r in t.rows for c in r.cells]
    assert "子ども医療費助成事務" in cells and "子ども医療費助成条例" in cells
    _run(cli_home, "checklist", "--session", "cli-check", "--export", "md", "--output", str(tmp_path / "sheet.md"), "--json")
    assert "# 事前相談シート" in (tmp_path / "sheet.md").read_text(encoding="utf-8")
    pdf = _run(cli_home, "checklist", "--session", "cli-check", "--export", "pdf", "--output", str(tmp_path / "sheet.pdf"),
               "--person", "山田 太郎", "--json")
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(pdf["output"]).pages)
    assert pdf["export"] == "pdf" and "子ども医療費助成事務" in text and "山田 太郎" in text
    assert "[電話番号マスク済]" in text  # the contact as it was stored
    assert b"5511" not in (cli_home / "assistant.db").read_bytes()
