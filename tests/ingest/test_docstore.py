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


def test_scope_confidence_title_and_japanese_dates(tmp_path: Path) -> None:
    from assistant.ingest.docstore import SCOPE_MUNICIPALITY, chunk_scope

    store = DocumentStore(tmp_path / "docs")
    path = tmp_path / "sakura.md"
    path.write_text("# さくら市の手当\nさくら手当は市が独自に支給します。\n", encoding="utf-8")
    result = store.ingest(path, as_of="令和8年4月1日", title="さくら市 独自給付の要綱", scope=SCOPE_MUNICIPALITY,
                          municipality="さくら市")
    assert result.status == "added" and "さくら市の利用者" in result.message and "要確認" in result.message
    (record,) = store.records()
    assert record["title"] == "さくら市 独自給付の要綱" and record["as_of"] == "2026-04-01"
    assert record["scope"] == SCOPE_MUNICIPALITY and record["municipality"] == "さくら市"
    assert {chunk_scope(c) for c in store.chunks()} == {(SCOPE_MUNICIPALITY, "さくら市")}
    assert {c.confidence for c in store.chunks()} == {"要確認"}
    # The same file and options again: nothing to do; a new confidence or scope rewrites the record.
    again = store.ingest(path, as_of="2026/4/1", title="さくら市 独自給付の要綱", scope=SCOPE_MUNICIPALITY,
                         municipality="さくら市")
    assert again.status == "unchanged"
    confirmed = store.ingest(path, as_of="2026-04-01", title="さくら市 独自給付の要綱", scope=SCOPE_MUNICIPALITY,
                             municipality="さくら市", confidence="確認済み")
    assert confirmed.status == "updated" and {c.confidence for c in store.chunks()} == {"確認済み"}
    public = store.ingest(path, as_of="2026-04-01", official=True)
    assert public.status == "updated" and {chunk_scope(c) for c in store.chunks()} == {("public", None)}
    assert {c.confidence for c in store.chunks()} == {"確認済み"}


def test_bad_options_are_refused_in_japanese(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "docs")
    path = tmp_path / "memo.md"
    path.write_text("# 手引\n本文です。\n", encoding="utf-8")
    no_body = store.ingest(path, scope="municipality")
    assert no_body.status == "error" and "団体名" in no_body.message
    bad_date = store.ingest(path, as_of="令和7年")
    assert bad_date.status == "error" and "時点" in bad_date.message and "令和8年4月1日" in bad_date.message
    bad_confidence = store.ingest(path, confidence="たぶん")
    assert bad_confidence.status == "error" and "確度" in bad_confidence.message
    assert store.records() == []


def test_remove_document_by_id(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "docs")
    path = tmp_path / "memo.md"
    path.write_text("# 手引\n本文です。\n", encoding="utf-8")
    added = store.ingest(path, keep_original=True)
    (record,) = store.records()
    assert (store.folder / record["original"]).is_file()
    removed = store.remove_document(added.doc_id)
    assert removed.status == "removed" and removed.path == "memo.md" and "元のファイル" in removed.message
    assert store.records() == [] and not list(store.originals_dir.iterdir())
    assert store.remove_document(added.doc_id).status == "not_found"
    assert store.remove_document("../etc").status == "not_found"


def test_a_new_scope_makes_the_index_stale(tmp_path: Path) -> None:
    from assistant.index.store import documents_fingerprint

    store = DocumentStore(tmp_path / "docs")
    path = tmp_path / "memo.md"
    path.write_text("# 手引\n本文です。\n", encoding="utf-8")
    store.ingest(path, as_of="2025-04-01")
    before = documents_fingerprint(store)
    store.ingest(path, as_of="2025-04-01", scope="municipality", municipality="さくら市")
    assert documents_fingerprint(store) != before
