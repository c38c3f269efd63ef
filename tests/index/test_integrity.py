"""Index builds are verified against the checksums of their manifest before any file is used.

A damaged or missing file makes `index status` say so, and opening falls back to the previous good
build or says to run `assistant index rebuild`. The corrupted-HNSW case runs `assistant ask` in a
subprocess: a damaged HNSW file used to crash the native library (SIGSEGV).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.index.store import IndexError_, build_index, current_build_dir, index_status, open_index
from assistant.ingest.docstore import DocumentStore
from assistant.knowledge import load_knowledge

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUESTION = "号ずれの修正だけの場合の届出"


def _segment_file(build: Path, name: str) -> Path:
    """A file of the HNSW segment of the build's Chroma folder."""
    return next(p for p in (build / "chroma").glob(f"*/{name}"))


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(bytes(len(data)) if data else b"\x00" * 64)


def _ingest_text(settings, name: str, text: str) -> None:  # noqa: ANN001
    path = settings.home / name
    path.write_text(text, encoding="utf-8")
    assert DocumentStore(settings.documents_dir).ingest(path, as_of="2025-04-01").status in {"added", "updated"}


def test_manifest_lists_a_checksum_for_every_file(settings) -> None:  # noqa: ANN001
    build_index(settings, load_knowledge(settings.corpus_dir))
    folder = current_build_dir(settings)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    assert all(len(checksum) == 64 for checksum in manifest["files"].values())
    index = open_index(settings)
    assert index.collection.count() == manifest["chunks"]
    after = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert index_status(settings, load_knowledge(settings.corpus_dir))["state"] == "ready", "opening must not alter the build"
    assert after == manifest
    index.close()
    assert not index.chroma_path.exists(), "the working copy is deleted on close"


@pytest.mark.parametrize("damage", ["delete-chunks", "delete-hnsw", "corrupt-hnsw", "corrupt-bm25", "corrupt-sqlite"])
def test_status_reports_missing_and_damaged_files(settings, damage: str) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    build_index(settings, knowledge)
    folder = current_build_dir(settings)
    targets = {
        "delete-chunks": folder / "chunks.jsonl",
        "delete-hnsw": _segment_file(folder, "data_level0.bin"),
        "corrupt-hnsw": _segment_file(folder, "header.bin"),
        "corrupt-bm25": folder / "bm25" / "vocab.index.json",
        "corrupt-sqlite": folder / "chroma" / "chroma.sqlite3",
    }
    target = targets[damage]
    if damage.startswith("delete"):
        target.unlink()
    else:
        _corrupt(target)
    status = index_status(settings, knowledge)
    name = target.relative_to(folder).as_posix()
    assert status["state"] == "broken"
    assert name in (status["missing_files"] if damage.startswith("delete") else status["damaged_files"])
    assert "rebuild" in status["error"]
    with pytest.raises(IndexError_, match="rebuild"):
        open_index(settings)


def test_a_damaged_build_falls_back_to_the_previous_good_one(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    first = build_index(settings, knowledge)
    _ingest_text(settings, "memo.md", "# 追加資料\nさくら町の独自給付の記載です。\n")
    second = build_index(settings, knowledge)
    _corrupt(_segment_file(settings.index_dir / second.build_id, "header.bin"))
    status = index_status(settings, knowledge)
    assert status["state"] == "broken" and status["fallback_build"] == first.build_id
    index = open_index(settings)
    assert index.build_id == first.build_id and index.fallback_from == second.build_id
    from assistant.retrieve.hybrid import HybridRetriever

    assert HybridRetriever(index).search(QUESTION, k=3)


def test_an_index_from_before_checksums_is_rebuilt_not_trusted(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    build_index(settings, knowledge)
    manifest_path = current_build_dir(settings) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.pop("files")
    manifest["format"] = 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    status = index_status(settings, knowledge)
    assert status["state"] == "stale" and "index_format" in status["stale_reasons"]
    with pytest.raises(IndexError_, match="rebuild"):
        open_index(settings)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"ASSISTANT_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def hnsw_index(settings):  # noqa: ANN001, ANN201
    """An index large enough (> 1000 vectors) that Chroma keeps a persisted HNSW graph."""
    paragraph = "さくら町の独自給付に関する規定の例文です。対象者、目的、給付の内容、照会する情報の種類を定めます。" * 6
    _ingest_text(settings, "kitei.txt", "\n".join(f"第{i}条 {paragraph}" for i in range(1000)))
    build_index(settings, load_knowledge(settings.corpus_dir))
    return settings


@pytest.mark.slow
def test_corrupt_hnsw_file_does_not_crash_ask_and_heals(hnsw_index) -> None:  # noqa: ANN001
    settings = hnsw_index
    folder = current_build_dir(settings)
    assert json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["chunks"] > 1000
    _corrupt(_segment_file(folder, "link_lists.bin"))
    asked = _cli(settings.home, "ask", QUESTION, "--json")
    assert asked.returncode == 0, f"ask ended with {asked.returncode}: {asked.stderr[-1500:]}"
    assert json.loads(asked.stdout)["citations"]
    assert "壊れているため、作り直します" in asked.stderr
    assert json.loads(_cli(settings.home, "index", "status", "--json").stdout)["state"] == "ready"


@pytest.mark.slow
def test_corrupt_hnsw_file_falls_back_to_the_previous_build_in_a_subprocess(hnsw_index) -> None:  # noqa: ANN001
    settings = hnsw_index
    previous = current_build_dir(settings).name
    _ingest_text(settings, "memo.md", "# 追加資料\nさくら町の独自給付の記載です。\n")
    build_index(settings, load_knowledge(settings.corpus_dir))
    current = current_build_dir(settings)
    assert (settings.index_dir / previous).is_dir()
    _corrupt(_segment_file(current, "link_lists.bin"))
    asked = _cli(settings.home, "ask", QUESTION, "--json")
    assert asked.returncode == 0, f"ask ended with {asked.returncode}: {asked.stderr[-1500:]}"
    assert json.loads(asked.stdout)["citations"]
    assert f"前の索引 {previous} で回答します" in asked.stderr
    status = json.loads(_cli(settings.home, "index", "status", "--json").stdout)
    assert status["state"] == "broken" and status["fallback_build"] == previous
    assert any(name.endswith("link_lists.bin") for name in status["damaged_files"])
