"""Adding, replacing or removing a document updates only that document's chunks; the result equals a full
rebuild, is sealed with checksums like one, and a removed document leaves no text in the new build."""

from __future__ import annotations

import numpy as np

from assistant.index import analysis, store
from assistant.index.integrity import verify_build
from assistant.index.store import build_index, current_build_dir, open_index, read_manifest, update_index
from assistant.ingest.docstore import DocumentStore
from assistant.knowledge import load_knowledge
from assistant.retrieve.hybrid import HybridRetriever

PHRASE = "さくらんぼ町独自給付金"
QUERY = f"{PHRASE}の届出"


def _add(settings, text: str) -> str:  # noqa: ANN001
    path = settings.home / "tebiki.md"
    path.write_text(text, encoding="utf-8")
    return DocumentStore(settings.documents_dir).ingest(path, as_of="2025-04-01").doc_id


def _view(settings):  # noqa: ANN001, ANN202
    index = open_index(settings)
    try:
        ids = sorted(c.source_id for c in index.chunks)
        order = [c.source_id for c in index.chunks]
        scores = dict(zip(order, HybridRetriever(index).bm25_scores(QUERY).tolist()))
        # The lexical ranking is exact; the vector store is compared by its vectors (an HNSW graph grown by
        # an update may order near neighbours differently from one built at once).
        hits = [h.chunk.source_id for h in HybridRetriever(index).search(QUERY, k=5, mode="bm25")]
        stored = index.collection.get(include=["embeddings"])
        vectors = {sid: np.asarray(v) for sid, v in zip(stored["ids"], stored["embeddings"])}
        return ids, scores, hits, index.collection.count(), vectors
    finally:
        index.close()


def test_adding_one_document_analyses_only_it_and_equals_a_full_build(settings, monkeypatch) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    first = build_index(settings, knowledge)
    doc_id = _add(settings, f"# {PHRASE}の手引\n{PHRASE}は町が独自に支給する給付金です。届出は不要です。\n")
    analysed: list[int] = []
    real = analysis.analyse_chunks
    monkeypatch.setattr(store, "analyse_chunks", lambda chunks, s, **kw: analysed.append(len(chunks)) or real(chunks, s, **kw))
    report = update_index(settings, knowledge, {doc_id})
    assert report.incremental and report.added_chunks == sum(analysed) >= 1 and report.removed_chunks == 0
    assert report.chunks == first.chunks + report.added_chunks
    folder = current_build_dir(settings)
    manifest = read_manifest(folder)
    assert manifest["based_on"] == first.build_id and verify_build(folder, manifest).ok
    incremental = _view(settings)
    monkeypatch.setattr(store, "analyse_chunks", real)
    build_index(settings, knowledge)
    full = _view(settings)
    assert incremental[0] == full[0] and incremental[3] == full[3] == report.chunks
    assert all(np.isclose(incremental[1][k], full[1][k], rtol=1e-5) for k in full[1])
    assert incremental[2] == full[2] and incremental[2][0].startswith(f"doc-{doc_id}")
    assert incremental[4].keys() == full[4].keys()
    assert all(np.allclose(incremental[4][k], full[4][k], atol=1e-6) for k in full[4])


def test_replacing_and_removing_a_document(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    build_index(settings, knowledge)
    doc_id = _add(settings, f"# {PHRASE}の手引\n旧版: {PHRASE}の申請は窓口で受け付けます。\n")
    update_index(settings, knowledge, {doc_id})
    _add(settings, f"# {PHRASE}の手引\n新版: {PHRASE}の申請は郵送でも受け付けます。\n")
    replaced = update_index(settings, knowledge, {doc_id})
    assert replaced.incremental and replaced.removed_chunks == replaced.added_chunks >= 1
    index = open_index(settings)
    texts = [c.text for c in index.chunks if c.meta.get("doc_id") == doc_id]
    index.close()
    assert texts and all("新版" in t and "旧版" not in t for t in texts)

    DocumentStore(settings.documents_dir).remove(settings.home / "tebiki.md")
    removed = update_index(settings, knowledge, {doc_id})
    assert removed.incremental and removed.added_chunks == 0 and removed.removed_chunks >= 1
    ids, _scores, hits, vectors, _stored = _view(settings)
    assert not [i for i in ids if i.startswith(f"doc-{doc_id}")] and vectors == len(ids)
    folder = current_build_dir(settings)
    leftovers = [p for p in settings.index_dir.rglob("*") if p.is_file() and PHRASE.encode() in p.read_bytes()]
    assert leftovers == [], "a removed document leaves no text in any build (Chroma's log included)"
    assert verify_build(folder, read_manifest(folder)).ok


def test_without_a_usable_build_an_update_is_a_full_build(settings) -> None:  # noqa: ANN001
    knowledge = load_knowledge(settings.corpus_dir)
    doc_id = _add(settings, f"# {PHRASE}\n{PHRASE}の説明です。\n")
    report = update_index(settings, knowledge, {doc_id})
    assert not report.incremental and report.chunks >= 1
    assert any(c.meta.get("doc_id") == doc_id for c in open_index(settings).chunks)
