"""The admin upload through the running app: masked at ingest, 要確認 unless official, the original kept
only on request (never in a served folder), and the status shows the build the app answers from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from ui_support import RunningApp

pytestmark = pytest.mark.slow

PHONE = "03-2468-1357"


def _records(home: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in (home / "documents").glob("*.json")]


def test_upload_is_masked_unconfirmed_and_not_kept(client: Client, running_app: RunningApp, tmp_path: Path) -> None:
    upload = tmp_path / "ひまわり町の手引.md"
    upload.write_text(f"# ひまわり町の独自給付\n\nひまわり手当の窓口は {PHONE} です。\n", encoding="utf-8")
    message, results, status, _, _ = client.predict(
        [handle_file(str(upload))], "", "guidance", "2025-04-01", "municipality", "ひまわり町", "要確認", True, False,
        api_name="/admin_ingest",
    )
    row = results["data"][0]
    assert row[1] == "追加" and "電話番号" in row[3] and "要確認" in row[3] and "ひまわり町の利用者" in row[3]
    record = next(r for r in _records(running_app.home) if r["title"] == upload.stem)
    assert {c["confidence"] for c in record["chunks"]} == {"要確認"} and record["original"] is None
    assert {(c["meta"]["scope"], c["meta"]["municipality"]) for c in record["chunks"]} == {("municipality", "ひまわり町")}
    assert not any(PHONE in c["text"] for c in record["chunks"])
    assert not (running_app.home / "documents" / "uploads" / upload.name).exists()
    assert "回答に使用中の索引" in status


def test_official_upload_with_the_original_kept(client: Client, running_app: RunningApp, tmp_path: Path) -> None:
    upload = tmp_path / "あさがお町の手引.md"
    upload.write_text("# あさがお町の独自給付\n\nあさがお手当は町が独自に支給します。\n", encoding="utf-8")
    _, results, _, _, _ = client.predict(
        [handle_file(str(upload))], "あさがお町 独自給付の手引", "guidance", "令和7年4月1日", "public", "", "確認済み", False,
        True, api_name="/admin_ingest",
    )
    assert results["data"][0][1] == "追加" and "保管" in results["data"][0][3]
    record = next(r for r in _records(running_app.home) if r["title"] == "あさがお町 独自給付の手引")
    assert {c["confidence"] for c in record["chunks"]} == {"確認済み"} and record["as_of"] == "2025-04-01"
    kept = running_app.home / "documents" / record["original"]
    assert kept.read_bytes() == upload.read_bytes()
    assert not kept.resolve().is_relative_to((running_app.home / "exports").resolve())


def test_a_document_is_removed_with_its_kept_original(client: Client, running_app: RunningApp, tmp_path: Path) -> None:
    upload = tmp_path / "つばき町の手引.md"
    upload.write_text("# つばき町の独自給付\n\nつばき手当は町が独自に支給します。\n", encoding="utf-8")
    client.predict([handle_file(str(upload))], "", "guidance", "2025-04-01", "public", "", "確認済み", False, True,
                   api_name="/admin_ingest")
    record = next(r for r in _records(running_app.home) if r["title"] == upload.stem)
    kept = running_app.home / "documents" / record["original"]
    assert kept.is_file()
    message = client.predict(record["doc_id"], False, api_name="/admin_remove")
    assert "削除しました" in message and "元のファイル" in message
    assert not kept.exists() and record["doc_id"] not in {r["doc_id"] for r in _records(running_app.home)}
