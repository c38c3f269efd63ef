"""A short version of benchmarks/load.py: many users at once lose nothing and get no errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from ui_support import PROJECT_ROOT, RunningApp

pytestmark = pytest.mark.slow


def load_module():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("load_benchmark", PROJECT_ROOT / "benchmarks" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_twenty_users_chatting_and_two_running_checklists(running_app: RunningApp, artifacts: Path) -> None:
    summary = load_module().run_load(
        running_app.url, f"sqlite:///{running_app.home / 'assistant.db'}", chat_users=20, checklist_users=2, turns=2, seconds=30, seed=7
    )
    (artifacts / "load-short.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    assert summary["chat_turns_acknowledged"] > 0 and summary["checklist_answers_acknowledged"] > 0
    assert summary["failed_requests"] == 0, summary["failure_messages"]
    for key in ("chat_turns_lost", "chat_turns_misfiled", "chat_turns_duplicated", "checklist_answers_lost",
                "checklist_answers_misfiled", "checklist_answers_stored_without_acknowledgement",
                "audit_rows_missing_or_doubled"):
        assert summary[key] == 0, (key, summary["problems"])
