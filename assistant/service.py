"""The Python API that the command line, the batch runner and the web app share.

Loads the knowledge base, makes sure an index exists (building it on first use, with progress
lines), and wires the retriever, the advisors and the answer composer. Heavy pieces load lazily
and once per index build; a build published by another process is picked up on the next request,
and so is a correction of the knowledge (the curation store's revision file changes).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from assistant.config import Settings, apply_offline_environment, load_settings
from assistant.knowledge import Knowledge
from assistant.validation import InputError, validate_question

__all__ = ["Assistant", "InputError", "validate_question"]

apply_offline_environment()


STALE_REASONS = {
    "corpus": "知識ベースが更新された",
    "documents": "登録文書が変わった",
    "embedding_model": "埋め込みモデルが変わった",
    "index_format": "索引の形式が新しくなった",
}
PointerStamp = Any  # assistant.index.store.published_stamp


# One question of each main kind: a case, a notification, a stage of the procedure.
REHEARSAL_QUESTIONS = (
    "子どもの医療費助成で地方税関係情報を照会できますか",
    "号ずれの修正だけの場合はどの届出ですか",
    "届出の前に何を準備しますか",
)


class _Served:
    """One opened index and the components built on it, each created once, on first use."""

    def __init__(self, owner: "Assistant", index: Any, stamp: PointerStamp, knowledge: Knowledge) -> None:
        self.owner = owner
        self.index = index
        self.stamp = stamp
        self.knowledge = knowledge  # the components below are built from this knowledge
        self.loaded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._parts: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _part(self, name: str, factory: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = factory()
            return self._parts[name]

    @property
    def retriever(self):  # noqa: ANN201
        return self._part("retriever", lambda: self.owner._make_retriever(self.index))

    @property
    def classifier(self):  # noqa: ANN201
        return self._part("classifier", lambda: self.owner._make_classifier(self.index, self.knowledge))

    @property
    def reader(self):  # noqa: ANN201
        return self._part("reader", lambda: self.owner._make_reader(self.index, self.classifier))

    @property
    def answerer(self):  # noqa: ANN201
        return self._part(
            "answerer", lambda: self.owner._make_answerer(self.retriever, self.classifier, self.reader, self.knowledge)
        )

    def warm_like(self, other: "_Served") -> None:
        """Create the components the other index had, so the first request after a switch is not slower."""
        for name in list(other._parts):
            getattr(self, name)


class Assistant:
    """The shared entry point. Each request checks (one `stat`) whether another process published a
    new index build, and switches to it; requests running meanwhile finish on the old one.

    `progress` receives Japanese progress lines when the index has to be built on first use.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        auto_build: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.settings.ensure_dirs()
        self.auto_build = auto_build
        self.progress = progress
        self._lock = threading.RLock()
        self._served: _Served | None = None
        self._failed_stamp: PointerStamp = None
        self._knowledge: Knowledge | None = None
        self._knowledge_stamp: PointerStamp = None
        self._reader_model: Any = None
        self._reader_model_lock = threading.Lock()
        self.timings: dict[str, float] = {}

    @property
    def knowledge(self) -> Knowledge:
        """corpus/ with the corrections in force; loaded again when a correction is recorded or taken back
        (in this or another process: one `stat` of the curation store's revision file per access)."""
        from assistant.curation.effective import load_effective_knowledge, revision_stamp

        stamp = revision_stamp(self.settings)  # before loading: a change made meanwhile is noticed next time
        current = self._knowledge
        if current is not None and stamp == self._knowledge_stamp:
            return current
        with self._lock:
            if self._knowledge is None or stamp != self._knowledge_stamp:
                self._knowledge = load_effective_knowledge(self.settings)
                self._knowledge_stamp = stamp
            return self._knowledge

    def reload_knowledge(self) -> Knowledge:
        """Load the knowledge now (after a correction made in this process) and serve it from the next request."""
        with self._lock:
            self._knowledge = None
            return self.knowledge

    @functools.cached_property
    def embedder(self):  # noqa: ANN201
        from assistant.index.embeddings import get_embedder

        return get_embedder(self.settings)

    # -- the served index -------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def _pointer_stamp(self) -> PointerStamp:
        from assistant.index.store import published_stamp

        return published_stamp(self.settings)

    def _auto_build(self, status: dict[str, Any]) -> None:
        from assistant.index.store import build_index

        state = status.get("state")
        if state == "missing":
            why = "索引がまだないため、作成します"
        elif state == "broken":
            why = "索引が壊れているため、作り直します"
        else:
            reasons = "、".join(STALE_REASONS.get(r, r) for r in status.get("stale_reasons", [])) or "内容が変わった"
            why = f"索引が古いため（{reasons}）、作り直します"
        self._say(f"{why}。数十秒から数分かかります")
        started = time.perf_counter()
        report = build_index(self.settings, self.knowledge, progress=self._say)
        self.timings["auto_build_seconds"] = time.perf_counter() - started
        self._say(f"索引を作成しました（{report.chunks} チャンク、{report.seconds:.1f} 秒）")

    def _open(self) -> _Served:
        from assistant.index.store import open_index

        stamp = self._pointer_stamp()  # before the pointer is read: a later change is then noticed
        index = open_index(self.settings)
        if index.fallback_from:
            self._say(
                f"索引 {index.fallback_from} が壊れているため、前の索引 {index.build_id} で回答します。"
                "`assistant index rebuild` で修復してください"
            )
        return _Served(self, index, stamp, self.knowledge)

    def _first_load(self) -> _Served:
        from assistant.index.store import IndexError_, index_status

        if self.auto_build:
            status = index_status(self.settings, self.knowledge, full=False)
            heal = status["state"] == "broken" and not status.get("fallback_build")
            if status["state"] in {"missing", "stale"} or heal:
                self._auto_build(status)
        try:
            return self._open()
        except IndexError_:
            if not self.auto_build:
                raise
            self._auto_build({"state": "broken"})
            return self._open()

    def _switch_if_published(self, served: _Served) -> None:
        from assistant.index.store import IndexError_, published_build_id

        if not self._lock.acquire(blocking=False):
            return  # another request is loading the new build; keep answering from this one
        try:
            if self._served is not served:
                return
            fresh = self._pointer_stamp()
            published = published_build_id(self.settings)
            if published is not None and published == served.index.build_id and not served.index.fallback_from:
                served.stamp = fresh  # the pointer was rewritten with the same build
                return
            try:
                replacement = self._open()
            except IndexError_ as exc:
                self._failed_stamp = fresh  # retried when the pointer changes again
                self._say(f"新しい索引に切り替えられません（{exc}）。今の索引で回答を続けます")
                return
            replacement.warm_like(served)
            self._served = replacement
        finally:
            self._lock.release()

    def _current(self) -> _Served:
        served = self._served
        if served is None:
            with self._lock:
                if self._served is None:
                    self._served = self._first_load()
                return self._served
        knowledge = self.knowledge
        if served.knowledge is not knowledge:
            self._follow_knowledge(knowledge)
            served = self._served
        stamp = self._pointer_stamp()
        if stamp != served.stamp and stamp != self._failed_stamp:
            self._switch_if_published(served)
        return self._served

    def _follow_knowledge(self, knowledge: Knowledge) -> None:
        """Build the components again from corrected knowledge, on the index being served (the index is rebuilt
        by whoever made the correction; a newly published build is then picked up as usual)."""
        with self._lock:
            served = self._served
            if served is None or served.knowledge is knowledge:
                return
            replacement = _Served(self, served.index, served.stamp, knowledge)
            replacement.warm_like(served)
            self._served = replacement

    def reload_index(self) -> None:
        """Open the published build now (waits for a load in progress; nothing to do if it is served)."""
        from assistant.index.store import published_build_id

        with self._lock:
            old = self._served
            stamp = self._pointer_stamp()
            published = published_build_id(self.settings)
            if old is not None and published is not None and published == old.index.build_id and not old.index.fallback_from:
                old.stamp = stamp
                return
            replacement = self._open()
            if old is not None:
                replacement.warm_like(old)
            self._served = replacement

    def served_index(self) -> dict[str, Any] | None:
        """The build this process answers from (None before the first request)."""
        served = self._served
        if served is None:
            return None
        manifest = served.index.manifest
        return {
            "build_id": served.index.build_id,
            "built_at": manifest.get("built_at"),
            "chunks": len(served.index.chunks),
            "documents": manifest.get("documents"),
            "loaded_at": served.loaded_at,
            "fallback_from": served.index.fallback_from,
            "fallback_reason": served.index.fallback_reason,
        }

    def index_report(self) -> dict[str, Any]:
        """What is served and what is on disk, side by side (they differ until the next request switches)."""
        from assistant.index.store import index_status

        disk = index_status(self.settings, self.knowledge, full=False)
        served = self.served_index()
        return {"served": served, "disk": disk, "in_sync": bool(served) and served["build_id"] == disk.get("build_id")}

    @property
    def index(self):  # noqa: ANN201
        return self._current().index

    @property
    def retriever(self):  # noqa: ANN201
        return self._current().retriever

    @property
    def classifier(self):  # noqa: ANN201
        return self._current().classifier

    @property
    def reader(self):  # noqa: ANN201
        return self._current().reader

    @property
    def answerer(self):  # noqa: ANN201
        return self._current().answerer

    @property
    def reader_model(self):  # noqa: ANN201
        """The learned reader for the corpus's utterances (trained once and cached under ASSISTANT_HOME)."""
        if self._reader_model is None:
            with self._reader_model_lock:  # the warm-up thread and a first request must not train it twice
                if self._reader_model is None:
                    from assistant.understand.training import build_model

                    self._reader_model = build_model(self.settings.corpus_dir, self.settings.cache_dir, progress=self._say)
        return self._reader_model

    def _make_retriever(self, index: Any):  # noqa: ANN202
        from assistant.retrieve.hybrid import HybridRetriever, Reranker

        reranker = Reranker(self.settings.reranker_model) if self.settings.reranker_model else None
        return HybridRetriever(
            index,
            bm25_weight=self.settings.bm25_weight,
            dense_weight=self.settings.dense_weight,
            reranker=reranker,
        )

    def _make_classifier(self, index: Any, knowledge: Knowledge | None = None):  # noqa: ANN202
        from assistant.advise.classify import CaseClassifier

        return CaseClassifier(knowledge or self.knowledge, self.embedder, index.by_id)

    def _make_reader(self, index: Any, classifier: Any):  # noqa: ANN202
        from assistant.understand.reader import Reader, ReaderVocabulary

        vocabulary = ReaderVocabulary.load(self.settings.corpus_dir)
        learned = Reader(self.reader_model, classifier, vocabulary, frozenset(index.bm25.vocab_dict))
        if not self.settings.llm_reading or self.settings.llm_backend in ("", "none"):
            return learned
        from assistant.llm.backends import create_chat_model
        from assistant.llm.reading import LLMReader

        model = create_chat_model(self.settings)
        return LLMReader(model, self.settings.prompts_dir, learned, self.settings.llm_backend) if model else learned

    def _make_answerer(self, retriever: Any, classifier: Any, reader: Any,
                       knowledge: Knowledge | None = None):  # noqa: ANN202
        from assistant.answer.compose import Answerer

        return Answerer(knowledge or self.knowledge, retriever, classifier, reader, self.settings)

    def warm_up(self) -> None:
        """Load everything a first answer needs (index, models, advisors), then answer rehearsal questions
        (nothing is stored), so the caches made on first use (vector segment, filter masks, the masker's
        patterns) are ready before the first real question."""
        from assistant.dialogue.state import ConversationState
        from assistant.privacy import mask_personal_data

        answerer = self.answerer
        learned = getattr(self.reader, "learned", self.reader)  # an LLM reading is not rehearsed
        for question in REHEARSAL_QUESTIONS:
            answerer.respond(learned.read(mask_personal_data(question)[0]), ConversationState())

    def warm_up_in_background(self, on_error: Callable[[Exception], None] | None = None) -> threading.Thread:
        """Start `warm_up` in a daemon thread (the web page answers meanwhile; a first question waits for it).

        A failure is passed to `on_error`; the first question then meets the same error and shows it."""

        def run() -> None:
            try:
                self.warm_up()
            except Exception as exc:  # noqa: BLE001 - reported, and raised again by the first request
                if on_error is not None:
                    on_error(exc)

        thread = threading.Thread(target=run, name="warm-up", daemon=True)
        thread.start()
        return thread

    # -- single-turn operations ---------------------------------------------------------------
    def classify(self, text: str) -> dict[str, Any]:
        question = validate_question(text, self.settings.max_question_chars)
        from assistant.privacy import mask_personal_data

        masked, _ = mask_personal_data(question)
        result = self.classifier.classify(masked).to_dict()
        return {k: result[k] for k in ("candidates", "statutory", "no_fit")} | {
            k: v for k, v in result.items() if k not in ("candidates", "statutory", "no_fit")
        }

    def read(self, text: str):  # noqa: ANN201
        """The typed reading of one (already masked) message."""
        return self.reader.read(text)

    def answer(self, text: str):  # noqa: ANN201
        """A single-turn answer object, its reading and the masked kinds: the message read and answered in a
        fresh conversation state."""
        from assistant.dialogue.state import ConversationState
        from assistant.privacy import mask_personal_data

        question = validate_question(text, self.settings.max_question_chars)
        masked, kinds = mask_personal_data(question)
        reading = self.read(masked)
        answer, _focus = self.answerer.respond(reading, ConversationState())
        if answer.reply_draft_requested:  # the message carries the inquiry to answer
            from assistant.dialogue.reply import ReplyDrafter

            answer.draft = ReplyDrafter(self).draft(masked)["draft"]
        return answer, reading, kinds

    def ask(self, text: str) -> dict[str, Any]:
        from assistant.answer.compose import result_dict

        return result_dict(*self.answer(text))

    def source(self, source_id: str) -> dict[str, Any]:
        known = self.knowledge.sources
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
            "instruction_like": chunk.instruction_like,
            "sources": [
                {"id": s, "title": known[s].title, "url": known[s].url, "as_of": known[s].as_of}
                for s in chunk.sources
                if s in known
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
                "information_queriers": case.information_queriers,
                "information_providers": case.information_providers,
                "information_confidence": case.effective_information_confidence,
                "example_affairs": case.example_affairs,
                "analogous_statutory_confidence": case.analogous_statutory_confidence,
            }
            for case in self.knowledge.cases.values()
        ]
