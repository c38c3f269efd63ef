"""The comparison baseline: plain LangChain RAG (Chroma with the same embeddings, top-k passages,
no BM25, no domain logic). It answers by returning the top passages."""

from __future__ import annotations

import re
import uuid
from typing import Any

from langchain_chroma import Chroma

from assistant.service import Assistant

TOP_K = 10


class PlainRag:
    def __init__(self, assistant: Assistant) -> None:
        index = assistant.index
        client, name = _collection_with_texts(index)
        self.store = Chroma(client=client, collection_name=name, embedding_function=assistant.embedder)
        self.retriever = self.store.as_retriever(search_kwargs={"k": TOP_K})
        self.by_id = index.by_id

    def _documents(self, text: str) -> list[Any]:
        return self.retriever.invoke(text)

    def classify(self, text: str) -> dict[str, Any]:
        documents = self._documents(text)
        ids = [d.id for d in documents]
        cases = [int(m.group(1)) for sid in ids if (m := re.fullmatch(r"case-(\d+)", sid or ""))]
        return {
            "candidates": [{"case": c} for c in cases[:5]],
            "statutory": False,
            "no_fit": False,
            "retrieved_ids": ids,
        }

    def ask(self, text: str) -> dict[str, Any]:
        documents = self._documents(text)
        ids = [d.id for d in documents]
        answer = "\n\n".join(d.page_content for d in documents[:3])
        citations = [
            {"source_id": d.id, "quote": d.page_content, "title": d.metadata.get("title", ""), "locator": "",
             "as_of": d.metadata.get("as_of", ""), "confidence": d.metadata.get("confidence", "")}
            for d in documents[:3]
        ]
        notice = next((re.fullmatch(r"notice-(\w+?)(-examples)?", sid or "") for sid in ids if (sid or "").startswith("notice-")), None)
        cases = [int(m.group(1)) for sid in ids if (m := re.fullmatch(r"case-(\d+)", sid or ""))]
        return {
            "answer": answer,
            "notification_type": notice.group(1) if notice else None,
            "cases": cases[:1],
            "statutory": False,
            "out_of_scope": False,
            "citations": citations,
            "retrieved_ids": ids,
        }


def _collection_with_texts(index: Any) -> tuple[Any, str]:
    """(an in-memory Chroma client, a collection in it) holding the index's vectors with each chunk's text, as a
    plain RAG store would: the index's own collection holds no texts, and LangChain's Chroma passes over results
    without one."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    stored = index.collection.get(include=["embeddings", "metadatas"])
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))
    name = f"baseline-{uuid.uuid4().hex[:12]}"
    collection = client.create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    ids = list(stored["ids"])
    if ids:
        collection.add(ids=ids, embeddings=stored["embeddings"], metadatas=stored["metadatas"],
                       documents=[index.by_id[i].text for i in ids])
    return client, name
