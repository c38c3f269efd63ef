"""The one ingestion call: files and folders in, records stored, the index updated, progress out.

The CLI (`assistant ingest`) and the admin page both call `ingest_documents`. It expands folders
(recursively, supported types only), reads, masks and chunks each file (in worker processes when
there are many), stores the records under the documents lock, and updates the index for exactly
the documents that changed: incrementally when the published build allows it, else a full build.
Progress goes to `progress` as `IngestEvent`s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from assistant.ingest.docstore import SCOPE_PUBLIC, DocumentStore, IngestResult, PreparedDocument
from assistant.ingest.limits import ReadLimits
from assistant.ingest.records import RecordCensus
from assistant.ingest.loaders import LOADERS

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(LOADERS))
CHANGED = frozenset({"added", "updated", "removed"})
PARALLEL_FROM_FILES = 8  # fewer files are read in the calling process
PARALLEL_BATCH = 16
# From this many files, vectors are written to a copy of the vector store while the files are read
# (assistant.index.staging); for a few files copying the store costs more than it saves.
STAGE_FROM_FILES = 200


@dataclass(frozen=True)
class IngestOptions:
    kind: str = "other"
    as_of: str | None = None
    title: str | None = None
    official: bool = False
    keep_original: bool = False
    confidence: str | None = None  # None: 確認済み when official, else 要確認
    scope: str = SCOPE_PUBLIC
    municipality: str | None = None


@dataclass(frozen=True)
class Upload:
    """A file to ingest; `origin` names the document when `path` is a temporary copy (an upload)."""

    path: Path
    origin: Path | None = None
    label: str | None = None


@dataclass(frozen=True)
class IngestEvent:
    """One progress step: `stage` is "read" (files, `done` of `total`), "index" or "done"."""

    stage: str
    done: int
    total: int
    message: str

    @property
    def fraction(self) -> float:
        """Share of the whole call done (reading is the first half when the index is updated)."""
        if self.stage == "done":
            return 1.0
        share = self.done / self.total if self.total else 1.0
        return 0.5 * share if self.stage == "read" else 0.5 + 0.5 * share


@dataclass
class IngestReport:
    results: list[IngestResult]
    index: Any = None  # assistant.index.store.BuildReport when the index was updated
    note: str | None = None
    files: int = 0
    bytes_read: int = 0

    @property
    def changed(self) -> bool:
        return any(r.status in CHANGED for r in self.results)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r.status == "error")

    def to_dict(self) -> dict[str, Any]:
        index = None
        if self.index is not None:
            index = dict(self.index.__dict__)
        return {"results": [r.to_dict() for r in self.results], "index": index, "note": self.note}


Progress = Callable[[IngestEvent], None]


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and the supported files under each folder (recursively, in name order).

    A path that does not exist is kept, so that its result says so."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
            )
        else:
            out.append(path)
    return out


def _prepare_kwargs(settings: Any, options: IngestOptions) -> dict[str, Any]:
    return dict(
        kind=options.kind, as_of=options.as_of, title=options.title, chunk_chars=settings.chunk_chars,
        max_bytes=int(settings.max_file_mb * 1_000_000), limits=ReadLimits.from_settings(settings),
        official=options.official, keep_original=options.keep_original, confidence=options.confidence,
        scope=options.scope, municipality=options.municipality,
    )


def _prepare_batch(settings: Any, items: list[tuple[Upload, Any]], kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
    """In a worker process: prepare each file and analyse its chunks (tokens and vectors)."""
    from assistant.index.analysis import analyse_chunks

    store = DocumentStore(settings.documents_dir, settings.corpus_dir, records=_NoRecords())
    out = []
    for upload, existing in items:
        outcome = store.prepare(upload.path, origin=upload.origin, existing=existing if existing else False, **kwargs)
        analysed = analyse_chunks(outcome.chunks, settings, workers=1) if isinstance(outcome, PreparedDocument) else None
        out.append((outcome, analysed))
    return out


class _NoRecords:
    """Worker processes never read or write records (the parent passes the old record in)."""

    def all(self) -> list[dict[str, Any]]:
        return []

    def heads(self) -> tuple[list[dict[str, Any]], list[str]]:
        return [], []

    def census(self) -> RecordCensus:
        return RecordCensus.of([])

    def get(self, doc_id: str) -> None:
        raise RuntimeError("records are not read in worker processes")

    def put(self, record: dict[str, Any]) -> None:
        raise RuntimeError("records are not written in worker processes")

    def delete(self, doc_id: str) -> None:
        raise RuntimeError("records are not deleted in worker processes")

    def group_commit(self) -> AbstractContextManager[None]:
        return nullcontext()


def _labelled(result: IngestResult, upload: Upload) -> IngestResult:
    if upload.label is None:
        return result
    return IngestResult(upload.label, result.status, result.message, result.chunks, result.doc_id, result.masked,
                        result.instruction_like, result.official, result.original_kept)


def _prepared_outcomes(settings: Any, store: DocumentStore, uploads: list[Upload], options: IngestOptions,
                       say: Callable[[IngestEvent], None]) -> Iterable[tuple[Upload, Any, Any]]:
    """(upload, PreparedDocument or IngestResult, Analysed or None) for each upload, in order."""
    from assistant.ingest.docstore import document_id

    kwargs = _prepare_kwargs(settings, options)
    workers = min(2, os.cpu_count() or 1)
    if len(uploads) < PARALLEL_FROM_FILES or workers <= 1:
        for number, upload in enumerate(uploads):
            say(IngestEvent("read", number, len(uploads), f"{upload.label or upload.path.name} を読み込んでいます（{number + 1}/{len(uploads)}）"))
            yield upload, store.prepare(upload.path, origin=upload.origin, **kwargs), None
        return
    items = [(u, store.get(document_id(u.origin or u.path))) for u in uploads]
    batches = [items[i : i + PARALLEL_BATCH] for i in range(0, len(items), PARALLEL_BATCH)]
    done = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
        futures = [pool.submit(_prepare_batch, settings, batch, kwargs) for batch in batches]
        for batch, future in zip(batches, futures):
            for (upload, _existing), (outcome, analysed) in zip(batch, future.result()):
                yield upload, outcome, analysed
                done += 1
            say(IngestEvent("read", done, len(uploads), f"{done}/{len(uploads)} 件のファイルを読み込みました"))


def ingest_documents(
    settings: Any,
    uploads: Iterable[Upload | Path | str],
    options: IngestOptions | None = None,
    *,
    remove: bool = False,
    update_index: bool = True,
    knowledge: Any = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest (or with `remove`, remove) the files and folders, then bring the index up to date."""
    from assistant.index.locks import documents_lock
    from assistant.index.store import Prepared, document_store
    from assistant.index.store import update_index as apply_to_index

    options = options or IngestOptions()
    say = progress or (lambda _event: None)
    given = [u if isinstance(u, Upload) else Upload(Path(u)) for u in uploads]
    expanded = [Upload(p) for u in given if u.origin is None for p in expand_paths([u.path])]
    expanded += [u for u in given if u.origin is not None]
    settings.ensure_dirs()
    store = document_store(settings)
    report = IngestReport(results=[], files=len(expanded))
    prepared: dict[str, Prepared] = {}
    changed_ids: set[str] = set()
    staged = None
    with documents_lock(settings):
        if remove:
            for number, upload in enumerate(expanded):
                say(IngestEvent("read", number, len(expanded), f"{upload.path.name} を削除しています"))
                report.results.append(_labelled(store.remove(upload.path, origin=upload.origin), upload))
        else:
            if update_index and len(expanded) >= STAGE_FROM_FILES:
                from assistant.curation.effective import load_effective_knowledge
                from assistant.index.staging import stage_vectors

                knowledge = knowledge or load_effective_knowledge(settings)
                staged = stage_vectors(settings, knowledge)
            try:
                with store.group_commit():  # the records of the files read are flushed to disk together
                    for upload, outcome, analysed in _prepared_outcomes(settings, store, expanded, options, say):
                        if isinstance(outcome, PreparedDocument):
                            report.bytes_read += _size(upload.path)
                            result = store.commit(outcome)
                            prepared[outcome.doc_id] = Prepared(outcome.chunks, analysed)
                            if staged is not None and analysed is not None and result.status in CHANGED:
                                staged = _staged_put(staged, outcome, analysed)
                        else:
                            result = outcome
                        report.results.append(_labelled(result, upload))
            except BaseException:
                close_staged(staged)
                raise
        changed_ids = {r.doc_id for r in report.results if r.status in CHANGED and r.doc_id}
        say(IngestEvent("read", len(expanded), len(expanded), f"{len(expanded)} 件のファイルを処理しました"))
        try:
            if changed_ids and update_index:
                from assistant.curation.effective import load_effective_knowledge

                knowledge = knowledge or load_effective_knowledge(settings)
                say(IngestEvent("index", 0, 1, "索引を更新しています"))
                report.index = apply_to_index(
                    settings, knowledge, changed_ids, prepared=prepared, staged=staged,
                    progress=lambda message: say(IngestEvent("index", 0, 1, message)),
                )
            elif any(r.status == "removed" for r in report.results):
                report.note = "削除した文書の本文は、索引を再構築するまで索引に残ります。`assistant index rebuild` を実行してください"
            elif changed_ids:
                report.note = "索引はまだ更新していません。`assistant index build` で回答に反映されます"
        finally:
            close_staged(staged)  # nothing is left when the update used it (or did not run)
    say(IngestEvent("done", 1, 1, "完了しました"))
    return report


def _staged_put(staged: Any, outcome: PreparedDocument, analysed: Any) -> Any:
    """Write the document's vectors to the staging copy; on any failure the copy is dropped (None), and the
    index update writes the vectors itself."""
    try:
        staged.put(outcome.doc_id, outcome.chunks, analysed.vectors)
        return staged
    except Exception:  # noqa: BLE001 - the staging copy is only a head start
        close_staged(staged)
        return None


def close_staged(staged: Any) -> None:
    if staged is not None:
        staged.discard()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
