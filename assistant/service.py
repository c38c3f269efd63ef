"""The Python API that the command line, the batch runner and the web app share.

Loads the knowledge base, makes sure an index exists (building it on first use), and wires the
retriever, the advisors and the answer composer. Heavy pieces load lazily and once.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from assistant.config import Settings, apply_offline_environment, load_settings
from assistant.knowledge import Knowledge, load_knowledge
from assistant.validation import InputError, validate_question

__all__ = ["Assistant", "InputError", "validate_question"]

apply_offline_environment()


class Assistant:
    def __init__(self, settings: Settings | None = None, *, auto_build: bool = True) -> None:
        self.settings = settings or load_settings()
        self.settings.ensure_dirs()
        self.auto_build = auto_build
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}

    @functools.cached_property
    def knowledge(self) -> Knowledge:
        return load_knowledge(self.settings.corpus_dir)

    @functools.cached_property
    def embedder(self):  # noqa: ANN201
        from assistant.index.embeddings import get_embedder

        return get_embedder(self.settings)

    @functools.cached_property
    def index(self):  # noqa: ANN201
        from assistant.index.store import IndexError_, build_index, index_status, open_index

        with self._lock:
            status = index_status(self.settings, self.knowledge)
            if status["state"] in {"missing", "stale", "broken"} and self.auto_build:
                started = time.perf_counter()
                build_index(self.settings, self.knowledge)
                self.timings["auto_build_seconds"] = time.perf_counter() - started
            try:
                return open_index(self.settings)
            except IndexError_:
                if not self.auto_build:
                    raise
                build_index(self.settings, self.knowledge)
                return open_index(self.settings)

    def reload_index(self) -> None:
        with self._lock:
            self.__dict__.pop("index", None)
            self.__dict__.pop("retriever", None)
            self.__dict__.pop("classifier", None)
            self.__dict__.pop("answerer", None)

    @functools.cached_property
    def retriever(self):  # noqa: ANN201
        from assistant.retrieve.hybrid import HybridRetriever, Reranker

        reranker = Reranker(self.settings.reranker_model) if self.settings.reranker_model else None
        return HybridRetriever(
            self.index,
            bm25_weight=self.settings.bm25_weight,
            dense_weight=self.settings.dense_weight,
            reranker=reranker,
        )

    @functools.cached_property
    def classifier(self):  # noqa: ANN201
        from assistant.advise.classify import CaseClassifier

        return CaseClassifier(self.knowledge, self.embedder, self.index.by_id)

    @functools.cached_property
    def answerer(self):  # noqa: ANN201
        from assistant.answer.compose import Answerer

        return Answerer(self.knowledge, self.retriever, self.classifier, self.settings)

    def warm_up(self) -> None:
        """Load everything a first answer needs (index, models, advisors)."""
        _ = self.answerer

    # -- single-turn operations ---------------------------------------------------------------
    def classify(self, text: str) -> dict[str, Any]:
        question = validate_question(text, self.settings.max_question_chars)
        from assistant.textnorm import mask_personal_data

        masked, _ = mask_personal_data(question)
        result = self.classifier.classify(masked).to_dict()
        return {k: result[k] for k in ("candidates", "statutory", "no_fit")} | {
            k: v for k, v in result.items() if k not in ("candidates", "statutory", "no_fit")
        }

    def ask(self, text: str, **context: Any) -> dict[str, Any]:
        question = validate_question(text, self.settings.max_question_chars)
        return self.answerer.answer(question, **context).to_dict()

    def source(self, source_id: str) -> dict[str, Any]:
        chunk = self.index.by_id.get(source_id)
        if chunk is None:
            raise KeyError(f"source_id {source_id!r} は索引にありません")
        return {
            "source_id": chunk.source_id,
            "title": chunk.title,
            "locator": chunk.locator,
            "text": chunk.text,
            "as_of": chunk.as_of,
            "confidence": chunk.confidence,
            "origin": chunk.origin,
            "kind": chunk.kind,
            "sources": [
                {"id": s, "title": self.knowledge.sources[s].title, "url": self.knowledge.sources[s].url,
                 "as_of": self.knowledge.sources[s].as_of}
                for s in chunk.sources
                if s in self.knowledge.sources
            ],
        }

    def cases(self) -> list[dict[str, Any]]:
        return [
            {
                "case": case.id,
                "name": case.name,
                "aliases": case.aliases,
                "analogous_statutory_affair": case.analogous_statutory_affair,
                "confidence": case.confidence,
                "as_of": case.as_of,
                "sources": case.sources,
                "seed_label": case.seed_label,
                "case_number": case.case_number,
                "old_appendix2_item": case.old_appendix2_item,
                "description": case.description,
                "target_persons": case.target_persons,
                "purpose_terms": case.purpose_terms,
                "benefit": case.benefit,
                "information_kinds": case.information_kinds,
                "example_affairs": case.example_affairs,
                "analogous_statutory_confidence": case.analogous_statutory_confidence,
            }
            for case in self.knowledge.cases.values()
        ]
