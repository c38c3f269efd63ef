"""Against the real servers started by `bash scripts/servers.sh start` (PostgreSQL, a Chroma server, two app
workers behind HAProxy): retrieval, ingest, checklist resume, feedback and two workers sharing state.

scripts/test.sh starts the servers, exports their settings (the script's ENV lines) and
ASSISTANT_TEST_PROXY_URL / ASSISTANT_TEST_WORKERS, runs `pytest -m server`, and stops them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.server
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
REQUIRED = ("ASSISTANT_DATABASE_URL", "ASSISTANT_CHROMA_URL", "ASSISTANT_TEST_PROXY_URL", "ASSISTANT_TEST_WORKERS")


@pytest.fixture(scope="module")
def servers() -> dict[str, Any]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        pytest.skip(f"servers not started (run through scripts/test.sh): {', '.join(missing)}")
    return {"proxy": os.environ["ASSISTANT_TEST_PROXY_URL"], "workers": os.environ["ASSISTANT_TEST_WORKERS"].split()}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"ASSISTANT_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=PROJECT_ROOT)


def _call(http: httpx.Client, url: str, name: str, *data: Any) -> list[Any]:
    """Gradio's two-step API; the client keeps the proxy's worker cookie between the two requests."""
    base = url.rstrip("/") + "/gradio_api/call/"
    posted = http.post(base + name, json={"data": list(data)})
    posted.raise_for_status()
    event_id, event = posted.json()["event_id"], None
    with http.stream("GET", f"{base}{name}/{event_id}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in {"complete", "error"}:
                payload = json.loads(line.split(":", 1)[1].strip() or "null")
                assert event == "complete", payload
                return payload
    raise AssertionError(f"{name}: no result")


def _chat(http: httpx.Client, url: str, session: str, text: str, history: list[Any]) -> list[Any]:
    """The chat endpoint with all its inputs: session, message, history, the turn map and the browser token."""
    return _call(http, url, "chat", session, text, history, {}, None)


def _checklist(outputs: list[Any]) -> dict[str, Any]:
    return next(v for v in reversed(outputs) if isinstance(v, dict) and "progress" in v and "step" in v)


def test_info_shows_the_server_backends_and_that_they_answer(servers, tmp_path: Path) -> None:  # noqa: ANN001
    info = json.loads(_cli(tmp_path / "home", "info", "--json").stdout)
    backends = info["backends"]
    assert backends["database"]["kind"] == "postgresql" and backends["database"]["answers"] is True
    assert backends["index"]["kind"] == "chroma-server" and backends["index"]["answers"] is True
    assert backends["documents"]["kind"] == "database"
    assert info["index"]["state"] == "ready" and info["index"]["collection"].startswith("chunks-")


def test_retrieval_from_the_servers(servers, tmp_path: Path) -> None:  # noqa: ANN001
    answer = json.loads(_cli(tmp_path / "home", "ask", "届出書の差替えはどのようなときに使いますか", "--json").stdout)
    assert answer["citations"] and all(c["source_id"] for c in answer["citations"])
    source = json.loads(_cli(tmp_path / "other", "source", answer["citations"][0]["source_id"], "--json").stdout)
    assert source["text"]


def test_an_ingest_by_one_process_answers_in_every_worker(servers, tmp_path: Path) -> None:  # noqa: ANN001
    phrase = f"もみじ町{uuid.uuid4().hex[:6]}独自給付金"
    folder = tmp_path / "資料"
    (folder / "章").mkdir(parents=True)
    (folder / "章" / "tebiki.md").write_text(f"# {phrase}の手引\n{phrase}は町が独自に支給する給付金です。\n", encoding="utf-8")
    ingested = _cli(tmp_path / "ingesting-home", "ingest", str(folder), "--as-of", "2025-04-01", "--json")
    assert ingested.returncode == 0, ingested.stderr
    report = json.loads(ingested.stdout)
    assert report["index"]["incremental"] is True and report["index"]["added_chunks"] >= 1
    shown = _cli(tmp_path / "reading-home", "ask", f"{phrase}とは何ですか", "--json")
    assert phrase in json.dumps(json.loads(shown.stdout)["citations"], ensure_ascii=False)
    for worker in servers["workers"]:
        deadline = time.monotonic() + 15
        with httpx.Client(timeout=120) as http:
            while True:
                outputs = _chat(http, worker, f"srv-{uuid.uuid4().hex[:8]}", f"{phrase}とは何ですか", [])
                if phrase in json.dumps(outputs[-1]["citations"], ensure_ascii=False):
                    break
                assert time.monotonic() < deadline, f"{worker} does not answer from the new document"
                time.sleep(1)
    removed = _cli(tmp_path / "ingesting-home", "ingest", str(folder / "章" / "tebiki.md"), "--remove", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["index"]["removed_chunks"] >= 1


def test_a_consultation_started_on_one_worker_continues_on_the_other(servers) -> None:  # noqa: ANN001
    session = f"srv-chat-{uuid.uuid4().hex[:8]}"
    first, second = servers["workers"][:2]
    with httpx.Client(timeout=120) as http:
        one = _chat(http, first, session, "子どもの医療費助成で住民税の情報を照会したいです。", [])
        two = _chat(http, second, session, "その場合、届出はいつまでに出せばよいですか？", one[0])
    assert one[-1]["turn"] == 1 and two[-1]["turn"] == 2 and two[-1]["session"] == session


def test_a_checklist_resumes_on_the_other_worker_through_the_proxy(servers) -> None:  # noqa: ANN001
    session = f"srv-check-{uuid.uuid4().hex[:8]}"
    first, second = servers["workers"][:2]
    with httpx.Client(timeout=120) as http:
        started = _checklist(_call(http, first, "checklist_start", session))
        answered = _checklist(_call(http, second, "checklist_answer", session, "もみじ市"))  # the first question: the municipality
    with httpx.Client(timeout=120) as http:  # a new browser: the proxy picks any worker
        resumed = _checklist(_call(http, servers["proxy"], "checklist_start", session))
    assert answered["step"] != started["step"] or answered["progress"] != started["progress"]
    assert resumed["step"] == answered["step"] and resumed["progress"] == answered["progress"]


def test_feedback_is_stored_in_the_server_database(servers) -> None:  # noqa: ANN001
    from assistant.dialogue.store import DialogueStore, dispose_engines

    session = f"srv-fb-{uuid.uuid4().hex[:8]}"
    DialogueStore(os.environ["ASSISTANT_DATABASE_URL"]).add_feedback(session, 1, 1, "わかりやすい")
    dispose_engines()  # a fresh connection, as another worker would have
    stored = DialogueStore(os.environ["ASSISTANT_DATABASE_URL"]).feedback(session)
    assert [(f.turn, f.rating, f.comment) for f in stored] == [(1, 1, "わかりやすい")]


def test_a_knowledge_correction_by_one_process_is_used_by_every_worker(servers, tmp_path: Path) -> None:  # noqa: ANN001
    alias = f"もみじ{uuid.uuid4().hex[:6]}応援給付"
    changed = _cli(tmp_path / "curating-home", "knowledge", "set", "cases.13.aliases", "--add", alias,
                   "--reason", "サーバー試験", "--no-index", "--json")
    assert changed.returncode == 0, changed.stderr
    for worker in servers["workers"]:
        deadline = time.monotonic() + 15
        with httpx.Client(timeout=120) as http:
            while True:
                rows = _call(http, worker, "cases_search", alias, "すべて")[0]["data"]
                if rows:
                    break
                assert time.monotonic() < deadline, f"{worker} does not see the correction"
                time.sleep(1)
        assert len(rows) == 1 and "13" in str(rows[0][0])
    log = json.loads(_cli(tmp_path / "other-home", "knowledge", "log", "cases.13.aliases", "--json").stdout)
    newest = log[-1] if isinstance(log, list) else log["history"][-1]
    reverted = _cli(tmp_path / "other-home", "knowledge", "revert", str(newest["id"]), "--reason", "試験の後始末",
                    "--no-index", "--json")
    assert reverted.returncode == 0, reverted.stderr
