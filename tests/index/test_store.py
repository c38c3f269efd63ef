import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.index.store import IndexError_, build_index, current_build_dir, index_status, open_index
from assistant.ingest.docstore import DocumentStore
from assistant.knowledge import load_knowledge
from assistant.retrieve.hybrid import HybridRetriever
from tests.ingest.fixtures import make_pdf

QUESTION = "号ずれの修正だけの場合の届出"


def _answers(settings) -> list[str]:  # noqa: ANN001
    index = open_index(settings)
    return [h.chunk.source_id for h in HybridRetriever(index).search(QUESTION, k=3)]


def test_failed_build_leaves_previous_index_answering(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    report = build_index(settings, knowledge)
    assert index_status(settings, knowledge)["state"] == "ready"
    before = _answers(settings)
    assert before

    def explode(stage: str) -> None:
        if stage == "bm25":
            raise RuntimeError("simulated crash during build")

    DocumentStore(settings.documents_dir).ingest(make_pdf(settings.home / "new.pdf", [["新しい資料です。"]]), as_of="2025-01-01")
    with pytest.raises(RuntimeError):
        build_index(settings, knowledge, _after_stage=explode)
    assert current_build_dir(settings).name == report.build_id
    assert _answers(settings) == before
    assert not list(settings.index_dir.glob(".building-*"))
    assert index_status(settings, knowledge)["stale_reasons"] == ["documents"]


def test_killed_build_leaves_previous_index_answering(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    report = build_index(settings, knowledge)
    before = _answers(settings)
    env = os.environ | {"ASSISTANT_HOME": str(settings.home)}
    script = (
        "import time\n"
        "from assistant.config import load_settings\n"
        "from assistant.index.store import build_index\n"
        "from assistant.knowledge import load_knowledge\n"
        "s = load_settings()\n"
        "def stall(stage):\n"
        "    print(stage, flush=True)\n"
        "    time.sleep(60) if stage == 'bm25' else None\n"
        "build_index(s, load_knowledge(s.corpus_dir), _after_stage=stall)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.stdout.readline().strip() != "bm25":
        pass
    assert list(settings.index_dir.glob(".building-*")), "the build should be in progress"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert current_build_dir(settings).name == report.build_id
    assert _answers(settings) == before
    build_index(settings, knowledge)  # the next build cleans up the leftover
    assert not list(settings.index_dir.glob(".building-*"))


def test_broken_index_gets_a_clear_message(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    build_index(settings, knowledge)
    folder = current_build_dir(settings)
    (folder / "chunks.jsonl").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexError_, match="rebuild"):
        open_index(settings)
    (settings.index_dir / "CURRENT").write_text("build-missing", encoding="utf-8")
    with pytest.raises(IndexError_, match="rebuild"):
        open_index(settings)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["chunks"] > 200
