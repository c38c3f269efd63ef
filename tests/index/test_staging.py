"""An ingest of many files writes the vectors to a copy of the vector store while the files are read; the
published index is the same as when the update writes them, and a copy that no longer fits is not used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.index import staging
from assistant.index.integrity import WORKING_COPIES
from assistant.index.store import build_index, current_build_dir, open_index, read_manifest
from assistant.index.integrity import verify_build
from assistant.ingest import pipeline
from assistant.ingest.pipeline import IngestOptions, ingest_documents
from assistant.knowledge import load_knowledge

FILES = 10  # enough for the reading processes (pipeline.PARALLEL_FROM_FILES)


def _write(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(FILES):
        (folder / f"tebiki{n:02d}.md").write_text(
            f"# みなと町独自給付 第{n}号\nみなと町独自給付の{version}の手引です。対象者の所得を確認します（{n}）。\n",
            encoding="utf-8",
        )


def _vectors(settings) -> dict[str, np.ndarray]:  # noqa: ANN001
    index = open_index(settings)
    try:
        stored = index.collection.get(include=["embeddings"])
        return {sid: np.asarray(v) for sid, v in zip(stored["ids"], stored["embeddings"])}
    finally:
        index.close()


@pytest.fixture
def staged_from_few_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "STAGE_FROM_FILES", 5)


def test_vectors_written_during_the_ingest_equal_a_full_build(settings, staged_from_few_files) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    build_index(settings, knowledge)
    folder = settings.home / "collection"
    _write(folder, "旧版")
    first = ingest_documents(settings, [folder], IngestOptions(as_of="2025-04-01"), knowledge=knowledge)
    assert first.index.incremental and first.index.staged_vectors
    _write(folder, "新版")  # every document replaced: their old vectors leave the copy
    second = ingest_documents(settings, [folder], IngestOptions(as_of="2025-04-01"), knowledge=knowledge)
    assert second.index.staged_vectors and second.index.removed_chunks == second.index.added_chunks >= FILES
    staged = _vectors(settings)
    build = current_build_dir(settings)
    assert verify_build(build, read_manifest(build), full=True).ok
    assert not list((settings.index_dir / WORKING_COPIES).glob("staged-*")), "the staging copy is gone"
    build_index(settings, knowledge)
    rebuilt = _vectors(settings)
    assert staged.keys() == rebuilt.keys()
    assert all(np.allclose(staged[k], rebuilt[k], atol=1e-6) for k in rebuilt)


def test_a_copy_made_from_another_build_is_not_used(settings, staged_from_few_files, monkeypatch) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    build_index(settings, knowledge)
    made = []
    real = staging.stage_vectors

    def stage_then_publish_another_build(settings_, knowledge_):  # noqa: ANN001, ANN202
        copy = real(settings_, knowledge_)
        made.append(copy)
        build_index(settings_, knowledge_)  # another process publishes meanwhile
        return copy

    monkeypatch.setattr(staging, "stage_vectors", stage_then_publish_another_build)
    folder = settings.home / "collection"
    _write(folder, "旧版")
    report = ingest_documents(settings, [folder], IngestOptions(as_of="2025-04-01"), knowledge=knowledge)
    assert made and made[0] is not None
    assert report.index.incremental and not report.index.staged_vectors
    assert not made[0].root.exists()
    assert len([sid for sid in _vectors(settings) if sid.startswith("doc-")]) == report.index.added_chunks
