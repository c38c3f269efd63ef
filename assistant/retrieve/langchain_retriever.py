"""The hybrid retriever as a LangChain retriever returning `Document`s with our metadata."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.retrieve.hybrid import Filters, Hit, HybridRetriever


def hit_to_document(hit: Hit) -> Document:
    chunk = hit.chunk
    return Document(
        page_content=chunk.text,
        id=chunk.source_id,
        metadata={
            "source_id": chunk.source_id,
            "title": chunk.title,
            "locator": chunk.locator,
            "kind": chunk.kind,
            "as_of": chunk.as_of,
            "confidence": chunk.confidence,
            "origin": chunk.origin,
            "score": hit.score,
        },
    )


class HybridLangChainRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    hybrid: Any
    k: int = 8
    filters: Any = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        retriever: HybridRetriever = self.hybrid
        return [hit_to_document(h) for h in retriever.search(query, k=self.k, filters=self.filters or Filters())]
