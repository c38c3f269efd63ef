"""The command-line contract, run as a user would (subprocesses with their own ASSISTANT_HOME)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.dialogue.store import dispose_engines


def _run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"ASSISTANT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
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
    asked = _run(home, "ask", "届出の種類は何ですか", "--json")
    assert asked.returncode == 0 and json.loads(asked.stdout)["citations"], asked.stderr
    assert not list((home / "index" / ".open").iterdir()), "the exit handlers still remove the working copy"
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


# -- bad arguments and damaged files: a clear message, never a traceback ---------------------------------
def test_arguments_that_are_not_utf8_get_a_clear_message(tmp_path: Path) -> None:
    env = os.environ | {"ASSISTANT_HOME": str(tmp_path / "home"), "LC_ALL": "C.UTF-8"}
    for args in ([b"ask", b"\x93\xcd\x8f\x6f"], [b"chat", b"--session", b"s\xff", b"--message", b"x"]):
        completed = subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, timeout=120)
        stderr = completed.stderr.decode("utf-8")
        assert completed.returncode == 2 and "UTF-8 として読めない" in stderr and "Traceback" not in stderr, stderr


def test_in_process_arguments_with_surrogates_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checklist", "--session", "ok", "--answer", "届出\udcff"]) == 2
    assert "5 番目の引数" in capsys.readouterr().err


def test_a_damaged_database_is_named_and_left_alone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(parents=True)
    database = home / "assistant.db"
    database.write_bytes(b"this is not a database" * 300)
    before = database.read_bytes()
    assert main(["chat", "--session", "s1", "--message", "届出は必要ですか", "--json"]) == 1
    err = capsys.readouterr().err
    assert str(database) in err and "壊れて" in err and "Traceback" not in err
    assert database.read_bytes() == before
    dispose_engines()


def test_a_session_id_with_a_path_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checklist", "--session", "../../../../../outside/x", "--json"]) == 2
    assert "セッション ID" in capsys.readouterr().err


def test_batch_refuses_to_overwrite_its_input(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"id": "a", "mode": "ask", "text": "届出"}\n', encoding="utf-8")
    assert main(["batch", "--input", str(data), "--output", str(data)]) == 2
    assert "同じファイル" in capsys.readouterr().err
    assert data.read_text(encoding="utf-8") == '{"id": "a", "mode": "ask", "text": "届出"}\n'
