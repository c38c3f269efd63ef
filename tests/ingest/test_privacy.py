"""Personal data in ingested documents is masked before anything is stored, and removed documents
leave no copy behind: not in the records, the builds on disk, the kept original or the served index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.index.store import build_index, current_build_dir
from assistant.ingest.docstore import DocumentStore
from assistant.knowledge import load_knowledge

SECRETS = ("1234-5678-9018", "03-1234-5678", "taro.yamada@example.jp", "山田太郎")
DOCUMENT = """# さくら市 独自給付の手引
## 届出の担当
さくら市の独自給付に関する事務の説明です。
担当者の個人番号 1234-5678-9018 を記載します。
連絡先: 03-1234-5678、taro.yamada@example.jp
氏名：山田太郎
"""
REMOVED_PHRASE = "さくらんぼ給付金の独自要綱"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _files_containing(root: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under `root` whose bytes contain one of the needles (UTF-8)."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.name.endswith(".npz"):
            continue
        data = path.read_bytes()
        hits = [n for n in needles if n.encode("utf-8") in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def test_personal_data_is_masked_before_anything_is_stored(settings, tmp_path: Path) -> None:  # noqa: ANN001
    from assistant.service import Assistant

    source = _write(tmp_path / "src", "tebiki.md", DOCUMENT)
    store = DocumentStore(settings.documents_dir)
    result = store.ingest(source, kind="guidance", as_of="2025-04-01")
    assert result.status == "added"
    assert {"my_number", "phone", "email", "labelled"} <= set(result.masked)
    assert "マスク" in result.message and "個人番号" in result.message and "電話番号" in result.message
    build_index(settings, load_knowledge(settings.corpus_dir))

    assert _files_containing(settings.home, SECRETS) == {}
    vocabulary = json.loads((current_build_dir(settings) / "bm25" / "vocab.index.json").read_text(encoding="utf-8"))
    assert not [token for token in vocabulary if any(part in token for part in ("9012", "yamada", "太郎"))]
    chunk_id = store.records()[0]["chunks"][0]["source_id"]
    shown = Assistant(settings).source(chunk_id)
    assert "マスク" in shown["text"] and not any(secret in json.dumps(shown, ensure_ascii=False) for secret in SECRETS)


def test_original_is_kept_only_on_request_outside_served_folders_and_purged_on_removal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = DocumentStore(home / "documents")
    source = _write(tmp_path / "src", "tebiki.md", DOCUMENT)
    store.ingest(source, as_of="2025-04-01")
    assert not store.originals_dir.exists() or not any(store.originals_dir.iterdir())

    kept = store.ingest(source, as_of="2025-04-01", keep_original=True)
    assert kept.status == "updated" and kept.original_kept
    copies = list(store.originals_dir.iterdir())
    assert len(copies) == 1 and copies[0].read_bytes() == source.read_bytes()
    assert not copies[0].resolve().is_relative_to((home / "exports").resolve())
    assert "保管" in kept.message

    removed = store.remove(source)
    assert removed.status == "removed" and "元のファイル" in removed.message
    assert list(store.originals_dir.iterdir()) == []
    assert source.exists(), "a file ingested from its own place is never deleted"


def test_removing_an_upload_deletes_the_copy_older_versions_kept(tmp_path: Path) -> None:
    """Older versions copied every upload to documents/uploads/ and left it there after --remove."""
    store = DocumentStore(tmp_path / "documents")
    upload_copy = _write(store.folder / "uploads", "tebiki.md", DOCUMENT)
    assert store.ingest(upload_copy).status == "added"
    assert store.remove(upload_copy).status == "removed"
    assert not upload_copy.exists()


def test_upload_is_ingested_from_a_temporary_file_under_its_own_name(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    name = store.folder / "uploads" / "tebiki.md"
    first = store.ingest(_write(tmp_path / "gradio-a", "tebiki.md", DOCUMENT), origin=name)
    second = store.ingest(_write(tmp_path / "gradio-b", "tebiki.md", DOCUMENT + "追記です。\n"), origin=name)
    assert (first.status, second.status) == ("added", "updated") and first.doc_id == second.doc_id
    assert not name.exists() and len(store.records()) == 1
    assert store.remove(name).status == "removed"


def test_removal_leaves_no_build_on_disk_with_the_document(settings, tmp_path: Path) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    store = DocumentStore(settings.documents_dir)
    removed_doc = _write(tmp_path / "src", "youkou.md", f"# 要綱\n{REMOVED_PHRASE}について定めます。\n")
    store.ingest(removed_doc, as_of="2025-04-01")
    first = build_index(settings, knowledge)
    store.ingest(_write(tmp_path / "src", "other.md", "# 手引\nほかの資料です。\n"), as_of="2025-04-01")
    second = build_index(settings, knowledge)
    # Adding a document keeps the previous build as a fallback: it holds nothing the new one lacks.
    assert (settings.index_dir / first.build_id).is_dir()

    store.remove(removed_doc)
    third = build_index(settings, knowledge)
    assert _files_containing(settings.index_dir, (REMOVED_PHRASE,)) == {}
    assert _files_containing(settings.documents_dir, (REMOVED_PHRASE,)) == {}
    assert not (settings.index_dir / second.build_id).exists()
    assert (settings.index_dir / third.build_id).is_dir()


def test_records_and_builds_from_before_masking_are_masked_and_purged(settings, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A record stored unmasked by an older version is masked by the next build, and the build that
    held its unmasked text is deleted."""
    knowledge = load_knowledge(settings.corpus_dir)
    store = DocumentStore(settings.documents_dir)
    store.ingest(_write(tmp_path / "src", "tebiki.md", DOCUMENT), as_of="2025-04-01")
    record_path = next(settings.documents_dir.glob("*.json"))
    legacy = json.loads(record_path.read_text(encoding="utf-8"))
    legacy.pop("format", None)
    for chunk in legacy["chunks"]:
        chunk["text"] = DOCUMENT
        chunk["confidence"] = "確認済み"
    record_path.write_text(json.dumps(legacy, ensure_ascii=False), encoding="utf-8")
    with monkeypatch.context() as patch:  # the older version's build: no upgrade step
        patch.setattr(DocumentStore, "upgrade_records", lambda self: 0, raising=False)
        unmasked = build_index(settings, knowledge)
    assert _files_containing(settings.index_dir / unmasked.build_id, ("03-1234-5678",))

    masked = build_index(settings, knowledge)
    assert _files_containing(settings.home, SECRETS) == {}
    assert not (settings.index_dir / unmasked.build_id).exists()
    upgraded = json.loads(record_path.read_text(encoding="utf-8"))
    assert {c["confidence"] for c in upgraded["chunks"]} == {"要確認"}
    assert (settings.index_dir / masked.build_id).is_dir()


@pytest.mark.parametrize("kept", [False, True])
def test_cli_options_for_originals(home: Path, tmp_path: Path, capsys, settings, kept: bool) -> None:  # noqa: ANN001
    from assistant.cli import main

    source = _write(tmp_path / "src", "tebiki.md", DOCUMENT)
    args = ["ingest", str(source), "--as-of", "2025-04-01", "--no-index", "--json"] + (["--keep-original"] if kept else [])
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["original_kept"] is kept and "phone" in result["masked"]
    originals = settings.documents_dir / "originals"
    assert (originals.is_dir() and len(list(originals.iterdir())) == 1) is kept
    assert main(["ingest", str(source), "--remove", "--no-index", "--json"]) == 0
    assert "索引を再構築するまで" in capsys.readouterr().err
    assert not originals.exists() or list(originals.iterdir()) == []
