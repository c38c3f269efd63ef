"""The command-line contract, run as a user would (subprocesses with their own ASSISTANT_HOME)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"ASSISTANT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def test_contract_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    info = json.loads(_run(home, "info", "--json").stdout)
    assert info["paths"]["home"] == str(home) and info["llm"]["backend"] == "none"
    cases = json.loads(_run(home, "cases", "--json").stdout)
    assert [c["case"] for c in cases] == list(range(1, 36))
    assert set(cases[0]) >= {"case", "name", "aliases", "analogous_statutory_affair", "confidence", "as_of", "sources"}
    built = _run(home, "index", "build", "--json")
    assert built.returncode == 0, built.stderr
    status = json.loads(_run(home, "index", "status", "--json").stdout)
    assert status["state"] == "ready"
    source = json.loads(_run(home, "source", "case-10", "--json").stdout)
    assert list(source)[:7] == ["source_id", "title", "locator", "text", "as_of", "confidence", "origin"]
    assert source["origin"] == "corpus/cases.yaml"
    missing = _run(home, "source", "no-such-id", "--json")
    assert missing.returncode != 0 and "no-such-id" in missing.stderr
    empty = _run(home, "ask", "   ")
    assert empty.returncode == 2 and "空" in empty.stderr
    batch_in = tmp_path / "in.jsonl"
    batch_in.write_text(json.dumps({"id": "x", "mode": "classify", "text": "扶養共済の掛金助成"}, ensure_ascii=False) + "\n", encoding="utf-8")
    batch_out = tmp_path / "out.jsonl"
    assert _run(home, "batch", "--input", str(batch_in), "--output", str(batch_out)).returncode == 0
    line = json.loads(batch_out.read_text(encoding="utf-8"))
    assert line["result"]["candidates"][0]["case"] == 19
    other = tmp_path / "other-home"
    assert json.loads(_run(other, "index", "status", "--json").stdout)["state"] == "missing"
