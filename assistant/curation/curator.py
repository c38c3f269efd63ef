"""What an administrator does with the knowledge base: look at facts, correct or confirm one with its source,
take a correction back, read the history, export the overlay. Every change is validated against the corpus's own
models and rules before it is stored, and written to the audit log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.audit import CLI_ACTOR, KNOWLEDGE_CHANGE, Actor, AuditLog
from assistant.curation.store import CorrectionStore, HistoryRow, NewCorrection, RevertConflict
from assistant.ingest.docstore import DocumentStore, masked_kinds_label
from assistant.knowledge import Knowledge, load_knowledge
from assistant.knowledge.models import CONFIRMED, UNCONFIRMED, CuratedSource
from assistant.knowledge.overlay import (
    CONFIDENCES,
    Correction,
    FactRef,
    FactState,
    Outcome,
    Overlay,
    OverlayError,
    all_facts,
    apply_overlay,
    fact_state,
    get_entry,
    is_list_field,
    is_optional_field,
    parse_path,
    shown,
)
from assistant.privacy import find_personal_data, mask_personal_data

CORPUS_SOURCE_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]*$")
LIST_SEPARATORS = re.compile(r"[、,;；]")
MAX_VALUE_CHARS = 4000
MAX_SOURCE_CHARS = 160
MAX_REASON_CHARS = 1000
BRIEF_CHARS = 60


class CurationError(ValueError):
    """A correction cannot be made as asked; the message is for the user."""


def brief(value: Any, limit: int = BRIEF_CHARS) -> str:
    text = shown(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_date(text: str | None, what: str = "時点") -> str | None:
    value = (text or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise CurationError(f"{what} {value!r} は YYYY-MM-DD の形で指定してください（例: 2026-04-01）") from exc


def _no_personal_data(text: str, what: str) -> None:
    findings = find_personal_data(text)
    if findings:
        kinds = masked_kinds_label(sorted({f.kind for f in findings}))
        raise CurationError(f"{what}に個人情報のような記載（{kinds}）があります。個人情報を含めずに書いてください")


def parse_list(text: str) -> list[str]:
    """Items typed as a JSON list, one per line, or (on one line) separated by 、 , or ;."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CurationError(f"一覧の値を JSON として読めません（{exc.msg}）。「、」区切りでも書けます") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CurationError("一覧の値は文字列の一覧（例: [\"A\", \"B\"]）で書いてください")
        items = value
    elif "\n" in text:
        items = text.split("\n")  # items may themselves hold 、 (「…は法定事務で、届出は不要」)
    else:
        items = LIST_SEPARATORS.split(text)
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


def source_label(knowledge: Knowledge, source_id: str) -> dict[str, Any]:
    source = knowledge.sources.get(source_id)
    if source is None:
        return {"id": source_id, "title": None}
    data = {"id": source_id, "title": source.title, "as_of": source.as_of, "confidence": source.confidence,
            "url": source.url}
    if isinstance(source, CuratedSource):
        data.update(curated=True, document=source.document, page=source.page)
    return data


@dataclass
class SetRequest:
    """A correction as an administrator asks for it (from the command line or the app)."""

    path: str
    value: str | list[str] | None = None
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    clear: bool = False
    confidence: str | None = None
    source: str | None = None
    page: str | None = None
    as_of: str | None = None
    reason: str = ""


@dataclass
class PlannedChange:
    """A validated change, before it is stored: the fact before and after."""

    ref: FactRef
    before: FactState
    after: FactState
    correction: Correction
    source: CuratedSource | None  # a new source the change names (None: a corpus source or none)

    def diff(self) -> list[tuple[str, str, str]]:
        """(what, before, after) for each part of the fact that changes."""
        rows = []
        if self.before.value != self.after.value:
            rows.append((self.ref.field_label, shown(self.before.value), shown(self.after.value)))
        if self.before.confidence != self.after.confidence:
            rows.append(("確度", self.before.confidence, self.after.confidence))
        if self.before.sources != self.after.sources:
            rows.append(("出典", "、".join(self.before.sources), "、".join(self.after.sources)))
        if self.before.as_of != self.after.as_of:
            rows.append(("時点", self.before.as_of, self.after.as_of))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.ref.path, "entry": self.before.entry_label, "field": self.ref.field_label,
            "before": self.before.value, "after": self.after.value,
            "confidence_before": self.before.confidence, "confidence_after": self.after.confidence,
            "sources_before": self.before.sources, "sources_after": self.after.sources,
            "as_of_before": self.before.as_of, "as_of_after": self.after.as_of,
            "source": self.correction.source, "reason": self.correction.reason,
            "diff": [{"what": w, "before": b, "after": a} for w, b, a in self.diff()],
        }


def _status_of(row: HistoryRow, outcomes: dict[int, Outcome]) -> str:
    if row.action != "set":
        return f"取り消し（#{row.reverts} を取り消し）"
    if row.reverted_by is not None:
        return f"取り消し済み（#{row.reverted_by}）"
    outcome = outcomes.get(row.id)
    if outcome is None:
        return "適用中"
    return outcome.label + (f": {outcome.message}" if outcome.message and not outcome.applies else "")


class Curator:
    def __init__(self, settings: Any, *, audit: AuditLog | None = None) -> None:
        self.settings = settings
        self.store = CorrectionStore.for_settings(settings)
        self._audit = audit
        self._base: tuple[tuple[Any, ...], Knowledge] | None = None

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            self._audit = AuditLog.for_settings(self.settings, purge_now=False)
        return self._audit

    # -- the knowledge -----------------------------------------------------------------------------
    def base(self) -> Knowledge:
        """The shipped corpus without corrections (loaded again when a corpus file changes)."""
        root = Path(self.settings.corpus_dir)
        stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(root.rglob("*")) if p.is_file())
        if self._base is None or self._base[0] != stamp:
            self._base = (stamp, load_knowledge(root))
        return self._base[1]

    def knowledge(self, overlay: Overlay | None = None) -> Knowledge:
        return apply_overlay(self.base(), overlay if overlay is not None else self.store.overlay())

    def facts(self, *, unconfirmed_only: bool = False, collection: str | None = None, query: str = "") -> list[FactState]:
        words = [w for w in (query or "").split() if w]
        out = []
        for fact in all_facts(self.knowledge()):
            if unconfirmed_only and fact.confidence != UNCONFIRMED:
                continue
            if collection and fact.ref.collection.name != collection:
                continue
            text = f"{fact.path} {fact.entry_label} {fact.ref.field_label} {shown(fact.value)}"
            if all(w in text for w in words):
                out.append(fact)
        return out

    def show(self, path: str) -> dict[str, Any]:
        ref = self._ref(path)
        knowledge = self.knowledge()
        fact = self._fact(knowledge, ref)
        outcomes = {o.correction: o for o in knowledge.overlay_outcomes}
        history = [row.to_dict() | {"status": _status_of(row, outcomes)} for row in self.store.history(ref.path)]
        return {
            "path": ref.path, "entry": fact.entry_label, "field": ref.field_label, "value": fact.value,
            "confidence": fact.confidence, "confidence_field": ref.confidence_field, "as_of": fact.as_of,
            "sources": [source_label(knowledge, s) for s in fact.sources], "history": history,
        }

    def log(self, path: str | None = None) -> list[dict[str, Any]]:
        ref = self._ref(path) if path else None
        outcomes = {o.correction: o for o in self.knowledge().overlay_outcomes}
        return [row.to_dict() | {"status": _status_of(row, outcomes)}
                for row in self.store.history(ref.path if ref else None)]

    def problems(self) -> list[Outcome]:
        """Corrections in force that do not apply to the corpus as shipped now."""
        return [o for o in self.knowledge().overlay_outcomes if not o.applies]

    # -- one correction -----------------------------------------------------------------------------
    def plan(self, request: SetRequest, *, overlay: Overlay | None = None) -> PlannedChange:
        """Validate a correction against the knowledge as it is now (nothing is stored)."""
        ref = self._ref(request.path)
        overlay = overlay if overlay is not None else self.store.overlay()
        knowledge = self.knowledge(overlay)
        before = self._fact(knowledge, ref)
        entry = get_entry(knowledge, ref)
        assert entry is not None
        after_value = self._new_value(ref, before.value, request)
        confidence = (request.confidence or "").strip() or None
        if confidence is not None and confidence not in CONFIDENCES:
            raise CurationError(f"確度は 確認済み か 要確認 で指定してください（{confidence!r} は使えません）")
        reason = self._reason(request.reason)
        as_of = _check_date(request.as_of)
        stated_confidence = getattr(entry, ref.confidence_field)
        value_changes = after_value != before.value
        confidence_changes = confidence is not None and confidence != stated_confidence
        source_text = (request.source or "").strip()
        if not value_changes and not confidence_changes and not source_text:
            raise CurationError("変更する内容がありません（新しい値・確度・出典のいずれかを指定してください）")
        resulting = confidence or before.confidence
        if resulting == CONFIRMED and not source_text:
            raise CurationError("確認済みの事実を補正するには、根拠の出典（公式の資料とページ、又は引用元）を指定してください")
        source_id, new_source = self._source(knowledge, source_text, (request.page or "").strip(), as_of,
                                             confirmed=resulting == CONFIRMED) if source_text else (None, None)
        correction = Correction(
            id=overlay.revision + 1, path=ref.path, before=before.value, after=after_value, confidence=confidence,
            confidence_before=stated_confidence, source=source_id, as_of=as_of, reason=reason,
        )
        result = self.knowledge(overlay.with_correction(correction, new_source))
        outcome = next(o for o in result.overlay_outcomes if o.correction == correction.id)
        if outcome.status == "in_corpus":
            raise CurationError("変更がありません（今の内容と同じです）")
        if outcome.status != "applied":
            raise CurationError(f"この補正は検査に通りません: {outcome.message}")
        return PlannedChange(ref, before, self._fact(result, ref), correction, new_source)

    def commit(self, changes: list[PlannedChange], actor: Actor = CLI_ACTOR, *, batch: str | None = None) -> list[HistoryRow]:
        """Store planned changes together (one transaction) and write them to the audit log."""
        if not changes:
            return []
        self._still_applies(changes)
        sources = list({c.source.id: c.source for c in changes if c.source is not None}.values())
        stored = self.store.record(
            [NewCorrection(c.ref.path, c.correction.before, c.correction.after, c.correction.confidence,
                           c.correction.confidence_before, c.correction.source, c.correction.as_of, c.correction.reason)
             for c in changes],
            actor, new_sources=sources, batch=batch, corpus_hash=self.base().content_hash,
        )
        for change, row in zip(changes, stored):
            self.audit.record(
                KNOWLEDGE_CHANGE, actor, question=change.ref.path,
                sources=[change.correction.source] if change.correction.source else [],
                detail=f"補正 #{row.id} {change.before.entry_label} {change.ref.field_label}: "
                       + "、".join(f"{w}「{brief(b)}」→「{brief(a)}」" for w, b, a in change.diff())
                       + f"（理由: {change.correction.reason}）",
            )
        return stored

    def _still_applies(self, changes: list[PlannedChange]) -> None:
        """Planned changes still apply to the corrections in force now (another administrator may have changed the
        same fact since the preview)."""
        overlay = self.store.overlay()
        start = overlay.revision + 1
        for number, change in enumerate(changes):
            correction = dataclasses.replace(change.correction, id=start + number)
            overlay = overlay.with_correction(correction, change.source)
        outcomes = {o.correction: o for o in self.knowledge(overlay).overlay_outcomes}
        for number, change in enumerate(changes):
            outcome = outcomes[start + number]
            if outcome.status != "applied":
                raise CurationError(
                    f"{change.before.entry_label} / {change.ref.field_label} は、確認のあとに変わりました（{outcome.message or outcome.label}）。"
                    "今の内容を確かめてから、もう一度操作してください"
                )

    def set(self, request: SetRequest, actor: Actor = CLI_ACTOR) -> tuple[PlannedChange, HistoryRow]:
        planned = self.plan(request)
        return planned, self.commit([planned], actor)[0]

    # -- reverts ------------------------------------------------------------------------------------
    def revert(self, ids: list[int], reason: str, actor: Actor = CLI_ACTOR) -> list[HistoryRow]:
        reason = self._reason(reason)
        wanted = sorted(set(int(i) for i in ids))
        if not wanted:
            raise CurationError("取り消す補正の番号を指定してください")
        history = self.store.history()
        by_id = {row.id: row for row in history}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise CurationError(f"補正 #{missing[0]} はありません（`assistant knowledge log` で番号を確かめてください）")
        targets = [by_id[i] for i in wanted]
        for target in targets:
            if target.action != "set":
                raise CurationError(f"#{target.id} は取り消しの記録です。元に戻すには、もう一度補正してください")
            if target.reverted_by is not None:
                raise CurationError(f"補正 #{target.id} は既に取り消されています（#{target.reverted_by}）")
            later = [r for r in history if r.active and r.path == target.path and r.id > target.id and r.id not in wanted]
            if later:
                raise CurationError(
                    f"補正 #{target.id} の後に同じ項目（{target.path}）を変えた補正 #{later[-1].id} があります。"
                    f"先に #{later[-1].id} を取り消すか、一緒に指定してください"
                )
        overlay = self.store.overlay()
        before = {o.correction for o in self.knowledge(overlay).overlay_outcomes if o.status == "applied"}
        remaining = Overlay(tuple(c for c in overlay.corrections if c.id not in wanted), overlay.sources, overlay.revision)
        broken = [o for o in self.knowledge(remaining).overlay_outcomes if o.correction in before and not o.applies]
        if broken:
            raise CurationError(
                f"取り消すと補正 #{broken[0].correction}（{broken[0].path}）が適用できなくなります（{broken[0].message}）。"
                "一緒に取り消してください"
            )
        try:
            stored = self.store.revert(targets, reason, actor)
        except RevertConflict as exc:
            raise CurationError(str(exc)) from exc
        for row in stored:
            self.audit.record(KNOWLEDGE_CHANGE, actor, question=row.path,
                              detail=f"補正 #{row.reverts} を取り消し（#{row.id}）（理由: {reason}）")
        return stored

    # -- export -------------------------------------------------------------------------------------
    def export(self, output: Path | None = None) -> tuple[str, int]:
        """The overlay in force as YAML (written to `output` when given) and how many corrections it holds."""
        overlay = self.store.overlay()
        knowledge = self.knowledge(overlay)
        data = overlay.to_dict()
        data["corpus_hash"] = self.base().content_hash
        notes = {o.correction: o for o in knowledge.overlay_outcomes if not o.applies}
        for item in data["corrections"]:
            if item["id"] in notes:
                item["status"] = f"{notes[item['id']].label}: {notes[item['id']].message}"
        header = (
            "# 知識ベースの補正（corpus/ に重ねて適用する差分）。\n"
            "# 内容を確かめてから `assistant knowledge merge このファイル --corpus corpus` で corpus/ に取り込めます。\n"
        )
        text = header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
        if output is not None:
            output = Path(output)
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        return text, len(overlay.corrections)

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _ref(path: str) -> FactRef:
        try:
            return parse_path(path)
        except OverlayError as exc:
            raise CurationError(str(exc)) from exc

    @staticmethod
    def _fact(knowledge: Knowledge, ref: FactRef) -> FactState:
        try:
            return fact_state(knowledge, ref)
        except OverlayError as exc:
            raise CurationError(str(exc)) from exc

    @staticmethod
    def _reason(text: str) -> str:
        reason = " ".join((text or "").split())
        if not reason:
            raise CurationError("補正の理由（--reason）を書いてください（履歴と監査ログに残ります）")
        if len(reason) > MAX_REASON_CHARS:
            raise CurationError(f"理由は {MAX_REASON_CHARS} 文字以内にしてください")
        return mask_personal_data(reason)[0]

    @staticmethod
    def _new_value(ref: FactRef, current: Any, request: SetRequest) -> Any:
        if is_list_field(ref):
            items = list(current or [])
            if request.clear:
                items = []
            if request.value is not None and request.value != "":
                items = request.value if isinstance(request.value, list) else parse_list(request.value)
            items = [*items, *(a.strip() for a in request.add if a.strip() and a.strip() not in items)]
            removing = {r.strip() for r in request.remove}
            unknown = [r for r in removing if r not in items]
            if unknown:
                raise CurationError(f"「{unknown[0]}」は {ref.field_label} にありません")
            after: Any = [item for item in items if item not in removing]
        else:
            if request.add or request.remove:
                raise CurationError(f"{ref.field_label} は一覧ではないため、追加・削除ではなく新しい値を指定してください")
            if request.clear:
                if not is_optional_field(ref):
                    raise CurationError(f"{ref.field_label} は空にできません")
                after = None
            elif request.value is None or (isinstance(request.value, str) and not request.value.strip()):
                after = current
            else:
                after = " ".join(str(request.value).split()) if "\n" not in str(request.value) else str(request.value).strip()
        for text in (after if isinstance(after, list) else [after]):
            if text is None:
                continue
            if len(text) > MAX_VALUE_CHARS:
                raise CurationError(f"値は {MAX_VALUE_CHARS} 文字以内にしてください")
            _no_personal_data(text, "新しい値")
        return after

    def _source(self, knowledge: Knowledge, text: str, page: str, as_of: str | None, *,
                confirmed: bool) -> tuple[str, CuratedSource | None]:
        """The source a correction names: a corpus source id, an ingested document (with its page), or a
        citation text. A new one becomes a source entry whose id shows it as a person names it."""
        if CORPUS_SOURCE_ID.fullmatch(text):
            if text not in knowledge.sources:
                raise CurationError(f"出典 {text} は出典の一覧（sources*.yaml）にありません")
            return text, None
        if text in knowledge.sources and not page and as_of is None:
            return text, None  # a source an earlier correction named, given by its id
        if len(text) > MAX_SOURCE_CHARS or len(page) > 40:
            raise CurationError(f"出典は {MAX_SOURCE_CHARS} 文字以内、ページは 40 文字以内で書いてください")
        _no_personal_data(f"{text} {page}", "出典")
        document = self._document(text)
        if document is not None:
            as_of = as_of or document.get("as_of_given")
            name = str(document.get("file_name") or document.get("title") or text)
            title = str(document.get("title") or name)
            key = f"doc-{document['doc_id']}"
        else:
            name, title, key = text, text, None
        if confirmed and as_of is None:
            raise CurationError("確認済みにするには、出典の時点（--as-of YYYY-MM-DD）を指定してください")
        where = f" {page}" if page else ""
        source_id = f"{name}{where}" + (f"（{as_of}時点）" if as_of else "")
        if source_id in knowledge.sources:
            return source_id, None
        source = CuratedSource(
            id=source_id, title=f"{title}{where}", as_of=as_of,
            as_of_note=None if as_of else "時点の指定がない出典（補正で登録）",
            confidence=CONFIRMED if as_of else UNCONFIRMED, document=key, page=page or None,
        )
        return source_id, source

    def _document(self, text: str) -> dict[str, Any] | None:
        """The ingested document that `text` names (its source key, id, file name or title)."""
        wanted = text.removeprefix("doc-")
        for record in DocumentStore(self.settings.documents_dir, self.settings.corpus_dir).records():
            if wanted == record.get("doc_id") or text in (record.get("file_name"), record.get("title")):
                return record
        return None
