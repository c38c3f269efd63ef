from langchain_core.documents import Document

from assistant.retrieve.hybrid import Filters
from assistant.retrieve.langchain_retriever import HybridLangChainRetriever


def test_hybrid_finds_the_notification_passage(assistant) -> None:  # noqa: ANN001
    hits = assistant.retriever.search("条例改正で号がずれた場合はどの届出？", k=5)
    assert any(h.chunk.source_id.startswith("notice-replace") for h in hits)
    assert hits == sorted(hits, key=lambda h: h.score, reverse=True)
    unrelated = assistant.retriever.search("今日の天気", k=5)
    assert not any(h.chunk.source_id.startswith("notice-replace") for h in unrelated)


def test_filters_by_kind_and_confidence(assistant) -> None:  # noqa: ANN001
    hits = assistant.retriever.search("届出の受付期間", k=10, filters=Filters(kinds=("qa",)))
    assert hits and {h.chunk.kind for h in hits} == {"qa"}
    confirmed = assistant.retriever.search("届出の受付期間", k=10, filters=Filters(confidence="確認済み"))
    assert confirmed and {h.chunk.confidence for h in confirmed} == {"確認済み"}


def test_langchain_retriever_returns_documents_with_metadata(assistant) -> None:  # noqa: ANN001
    retriever = HybridLangChainRetriever(hybrid=assistant.retriever, k=4)
    documents = retriever.invoke("ひとり親家庭等医療費助成の事例")
    assert documents and all(isinstance(d, Document) for d in documents)
    assert {"source_id", "title", "locator", "as_of", "confidence", "kind"} <= set(documents[0].metadata)


def test_municipal_material_answers_its_own_municipality_only(assistant) -> None:  # noqa: ANN001
    import dataclasses
    from types import SimpleNamespace

    from assistant.index.chunk_table import ChunkRow
    from assistant.retrieve.hybrid import Audience, HybridRetriever, answering_for

    query = "届出の受付期間"
    top = assistant.retriever.search(query, k=1, mode="bm25")[0].chunk
    own = dataclasses.replace(top, meta=top.meta | {"scope": "municipality", "municipality": "さくら市"})
    index = assistant.index
    chunks = [own if c.source_id == top.source_id else c for c in index.chunks]
    rows = [ChunkRow.of(c) for c in chunks]
    scoped = HybridRetriever(SimpleNamespace(chunks=chunks, rows=rows, bm25=index.bm25, position=index.position))

    def found(audience: Audience | None) -> bool:
        with answering_for(audience):
            return top.source_id in {h.chunk.source_id for h in scoped.search(query, k=5, mode="bm25")}

    assert found(None), "without an audience (local use) everything is searched"
    assert found(Audience("さくら市"))
    assert not found(Audience("もみじ町")), "another municipality's material is left out"
    assert not found(Audience(None)), "an officer with no municipality recorded sees public material only"
    assert found(None), "the audience ends with its block"


def _passes(filters, chunk) -> bool:  # noqa: ANN001 - the rule, one chunk at a time
    from assistant.ingest.docstore import chunk_scope

    scope, owner = chunk_scope(chunk)
    audience = filters.audience
    return (
        (audience is None or scope != "municipality" or (audience.municipality is not None and owner == audience.municipality))
        and (not filters.kinds or chunk.kind in filters.kinds)
        and (not filters.confidence or chunk.confidence == filters.confidence)
        and (not filters.as_of_from or chunk.as_of >= filters.as_of_from)
        and (not filters.as_of_to or chunk.as_of <= filters.as_of_to)
    )


def test_filter_masks_equal_filtering_chunk_by_chunk(assistant) -> None:  # noqa: ANN001
    import dataclasses

    from assistant.index.chunk_table import ChunkRow
    from assistant.retrieve.hybrid import Audience, ChunkColumns

    base = assistant.index.chunks
    chunks = [*base]
    for n, chunk in enumerate(base[:40]):  # some municipal material of two municipalities
        owner = "さくら市" if n % 2 else "みなと町"
        chunks[n] = dataclasses.replace(chunk, meta=chunk.meta | {"scope": "municipality", "municipality": owner})
    columns = ChunkColumns.of([ChunkRow.of(c) for c in chunks])
    kinds = sorted({c.kind for c in chunks})
    dates = sorted({c.as_of for c in chunks})
    cases = [
        Filters(),
        Filters(kinds=(kinds[0],)),
        Filters(kinds=tuple(kinds[:2]), confidence="確認済み"),
        Filters(confidence="要確認"),
        Filters(as_of_from=dates[len(dates) // 2]),
        Filters(as_of_to=dates[len(dates) // 3], kinds=(kinds[-1],)),
        Filters(audience=Audience()),
        Filters(audience=Audience("さくら市")),
        Filters(audience=Audience("いちょう村"), confidence="確認済み"),
    ]
    for filters in cases:
        expected = [_passes(filters, c) for c in chunks]
        assert filters.mask(columns).tolist() == expected, filters
    assert 0 < sum(Filters(audience=Audience("さくら市")).mask(columns)) < len(chunks)
