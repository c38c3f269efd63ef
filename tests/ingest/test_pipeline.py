"""The one ingestion call: folders are read recursively (supported types only), progress is reported in
order, and many files are read in worker processes with the same results as one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.ingest import pipeline
from assistant.ingest.pipeline import IngestEvent, IngestOptions, expand_paths, ingest_documents


def _tree(root: Path) -> Path:
    (root / "章" / "節").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.md").write_text("# 受付\n届出書の差替えは随時受け付けます。\n", encoding="utf-8")
    (root / "章" / "b.txt").write_text("変更の届出は事例番号が変わるときに行います。\n", encoding="utf-8")
    (root / "章" / "節" / "c.html").write_text("<h1>中止</h1><p>事務をやめるときは中止の届出です。</p>", encoding="utf-8")
    (root / "章" / "memo.exe").write_bytes(b"MZ")
    (root / ".hidden" / "d.md").write_text("# 隠し\n", encoding="utf-8")
    return root


def test_folders_are_expanded_recursively_with_supported_types_only(tmp_path: Path) -> None:
    root = _tree(tmp_path / "資料")
    names = [p.relative_to(root).as_posix() for p in expand_paths([root])]
    assert names == ["a.md", "章/b.txt", "章/節/c.html"]
    assert expand_paths([tmp_path / "ない.pdf"]) == [tmp_path / "ない.pdf"]  # reported, not dropped


def test_cli_ingests_a_folder_and_reports_progress(home: Path, tmp_path: Path, capsys, settings) -> None:  # noqa: ANN001
    root = _tree(tmp_path / "資料")
    code = main(["ingest", str(root), "--kind", "guidance", "--as-of", "2025-04-01", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0, captured.err
    assert [r["status"] for r in out["results"]] == ["added", "added", "added"]
    assert out["index"]["documents"] == 3
    code = main(["ingest", str(root), "--kind", "guidance", "--as-of", "2025-04-01"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.count("[変更なし]") == 3
    assert "[" in captured.err and "%]" in captured.err  # progress lines on stderr


def test_an_empty_folder_is_a_clear_error(home: Path, tmp_path: Path, capsys, settings) -> None:  # noqa: ANN001
    (tmp_path / "空").mkdir()
    assert main(["ingest", str(tmp_path / "空")]) == 1
    assert "登録できるファイルがありません" in capsys.readouterr().err


def test_progress_events_are_ordered_and_end_done(settings, tmp_path: Path) -> None:  # noqa: ANN001
    root = _tree(tmp_path / "資料")
    events: list[IngestEvent] = []
    report = ingest_documents(settings, [root], IngestOptions(as_of="2025-04-01"), progress=events.append)
    assert report.changed and report.index is not None
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and events[-1].stage == "done" and fractions[-1] == 1.0
    assert [e.stage for e in events if e.stage != "done"][-1] == "index"
    assert any("c.html" in e.message for e in events)


def test_many_files_in_worker_processes_give_the_same_records(settings, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    folder = tmp_path / "多数"
    folder.mkdir()
    for number in range(pipeline.PARALLEL_FROM_FILES + 2):
        (folder / f"{number:02d}.md").write_text(
            f"# 第{number}号\n担当 山田太郎 電話 03-1234-5678。届出の種類は新規、変更、中止です（{number}）。\n", encoding="utf-8"
        )
    parallel = ingest_documents(settings, [folder], IngestOptions(as_of="2025-04-01"), update_index=False)
    from assistant.index.store import document_store

    stored = {r["doc_id"]: r["chunks"] for r in document_store(settings).records()}
    monkeypatch.setattr(pipeline, "PARALLEL_FROM_FILES", 10_000)
    for path in folder.iterdir():
        path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # changed: read again
    serial = ingest_documents(settings, [folder], IngestOptions(as_of="2025-04-01"), update_index=False)
    assert [r.status for r in parallel.results] == ["added"] * len(parallel.results)
    assert [r.status for r in serial.results] == ["updated"] * len(serial.results)
    assert [r.masked for r in parallel.results] == [r.masked for r in serial.results]
    again = {r["doc_id"]: r["chunks"] for r in document_store(settings).records()}
    assert set(again) == set(stored)
    assert all("[電話番号マスク済]" in c["text"] for chunks in stored.values() for c in chunks)
    assert [len(v) for v in stored.values()] == [len(again[k]) for k in stored]


@pytest.mark.parametrize("kind", ["nope"])
def test_bad_options_are_reported_per_file(settings, tmp_path: Path, kind: str) -> None:  # noqa: ANN001
    root = _tree(tmp_path / "資料")
    report = ingest_documents(settings, [root], IngestOptions(kind=kind))
    assert report.errors == 3 and not report.changed and report.index is None
