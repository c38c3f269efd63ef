import json
from pathlib import Path

from assistant.cli import main
from assistant.ingest.docstore import DocumentStore
from tests.ingest.fixtures import JAPANESE_LINES, make_pdf


def test_reingest_is_idempotent_and_changes_replace_chunks(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "docs")
    path = make_pdf(tmp_path / "tebiki.pdf", [JAPANESE_LINES])
    first = store.ingest(path, kind="guidance", as_of="2024-06-01", official=True)
    assert first.status == "added" and first.chunks >= 1
    again = store.ingest(path, kind="guidance", as_of="2024-06-01", official=True)
    assert again.status == "unchanged"
    make_pdf(path, [JAPANESE_LINES, ["第2章 改訂版で追加された記載です。"]])
    changed = store.ingest(path, kind="guidance", as_of="2024-09-01", official=True)
    assert changed.status == "updated"
    chunks = store.chunks()
    assert len(store.records()) == 1
    assert len({c.source_id for c in chunks}) == len(chunks)
    assert any("改訂版" in c.text for c in chunks)
    assert {c.as_of for c in chunks} == {"2024-09-01"} and {c.confidence for c in chunks} == {"確認済み"}
    assert store.remove(path).status == "removed"
    assert store.chunks() == []


def test_missing_as_of_is_marked_unconfirmed(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "docs")
    path = tmp_path / "memo.md"
    path.write_text("# 手引\n## 受付\n差替えは随時受け付けます。\n", encoding="utf-8")
    result = store.ingest(path)
    assert result.status == "added" and "要確認" in result.message
    assert {c.confidence for c in store.chunks()} == {"要確認"}


def test_cli_reports_each_file_and_keeps_going(home: Path, tmp_path: Path, capsys, settings) -> None:  # noqa: ANN001
    good = make_pdf(tmp_path / "good.pdf", [JAPANESE_LINES])
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    unsupported = tmp_path / "x.exe"
    unsupported.write_bytes(b"MZ")
    code = main(["ingest", str(empty), str(unsupported), str(good), "--kind", "guidance", "--as-of", "2024-06-01", "--json"])
    out = json.loads(capsys.readouterr().out)
    statuses = [r["status"] for r in out["results"]]
    assert statuses == ["error", "error", "added"]
    assert code == 1
    assert out["index"]["documents"] == 1
    code = main(["ingest", str(good), "--kind", "guidance", "--as-of", "2024-06-01", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["results"][0]["status"] == "unchanged" and out["index"] is None
