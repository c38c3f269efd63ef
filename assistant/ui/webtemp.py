"""Gradio's temporary folder (its copies of uploads and downloads) under ASSISTANT_HOME.

Gradio reads ``GRADIO_TEMP_DIR`` when it is imported, so `use_home_for_gradio_temp` runs first.
Each app process gets its own subfolder; a start removes the folders of processes that have ended,
and Gradio's ``delete_cache`` removes day-old files while the app runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
from pathlib import Path

from assistant.files import process_alive

TEMP_FOLDER = "gradio-temp"



def clean_ended(root: Path, keep: int) -> list[Path]:
    """Remove the subfolders of processes that are no longer running (and stray files); return them."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        pid = int(entry.name) if entry.name.isdigit() else None
        if pid == keep or (pid is not None and entry.is_dir() and process_alive(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def use_home_for_gradio_temp(home: Path) -> Path:
    """Point Gradio at ``<home>/gradio-temp/<pid>``, clean up after ended processes; returns the folder."""
    root = Path(home) / TEMP_FOLDER
    folder = root / str(os.getpid())
    if os.environ.get("GRADIO_TEMP_DIR") == str(folder):
        return folder
    if "gradio" in sys.modules:
        raise RuntimeError("use_home_for_gradio_temp must run before gradio is imported")
    clean_ended(root, keep=os.getpid())
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, True)
    return folder
