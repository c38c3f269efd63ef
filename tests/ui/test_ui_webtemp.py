"""Gradio's temporary folder: one subfolder per app process under ASSISTANT_HOME, ended ones removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from assistant.ui.webtemp import clean_ended


def ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_start_removes_what_ended_processes_left(tmp_path: Path) -> None:
    root = tmp_path / "gradio-temp"
    mine, running, ended = root / str(os.getpid()), root / str(os.getppid()), root / str(ended_pid())
    for folder in (mine, running, ended):
        (folder / "upload").mkdir(parents=True)
        (folder / "upload" / "資料.txt").write_text("写し", encoding="utf-8")
    (root / "stray.txt").write_text("x", encoding="utf-8")
    removed = clean_ended(root, keep=os.getpid())
    assert sorted(removed) == sorted([ended, root / "stray.txt"])
    assert mine.is_dir() and running.is_dir() and not ended.exists()
    assert clean_ended(tmp_path / "missing", keep=os.getpid()) == []
