"""Corrections laid over corpus/: field-level changes to fact entries, applied when the knowledge is loaded.

A correction names one fact by its path (``cases.5.analogous_statutory_affair``, ``qa.qa-012.answer``,
``procedure.checklist.req-providers.why``), the value it expects to find (``before``), the new value, the new
confidence of that fact, and the source that states it. Applying it re-validates the entry with the corpus's own
models and checks (sources, as-of rule, 【要確認】 rule). A correction that no longer applies to the loaded corpus (the
shipped corpus was upgraded and the fact changed meanwhile, or the entry is gone) is reported, never silently dropped
or forced. The overlay is plain data: the curation store keeps it in the database, and it is exported as YAML.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from assistant.knowledge.models import CONFIRMED, UNCONFIRMED, CuratedSource, Sourced

if TYPE_CHECKING:
    from assistant.knowledge.loader import Knowledge

OVERLAY_FORMAT = 1
CONFIDENCES = (CONFIRMED, UNCONFIRMED)
MISSING = object()


class OverlayError(ValueError):
    """A fact path, a value or an overlay file is malformed; the message is for the user."""


# -- the facts a correction may change ------------------------------------------------------------------
@dataclass(frozen=True)
class Collection:
    """A kind of fact-bearing entry: where it lives and which of its fields a correction may change."""

    name: str  # the path prefix
    label: str
    file: str  # the corpus file
    section: str | None  # the top-level key inside the file (procedure.yaml)
    fields: dict[str, str]  # editable field → the confidence attribute that covers it
    field_labels: dict[str, str]

    def entry_label(self, key: str, entry: Sourced) -> str:
        if self.name == "cases":
            return f"事例({key}) {getattr(entry, 'name', '')}"
        if self.name == "qa":
            return f"{key} {getattr(entry, 'question', '')}"
        for attribute in ("name", "label"):
            value = getattr(entry, attribute, None)
            if isinstance(value, str):
                return f"{self.label} {value}"
        return f"{self.label} {key}"


CASE_FIELDS = {
    "analogous_statutory_affair": "analogous_statutory_confidence",
    "case_number": "case_number_confidence",
    "information_kinds": "information_confidence",
    "information_queriers": "information_confidence",
    "information_providers": "information_confidence",
    "aliases": "confidence",
    "old_appendix2_item": "confidence",
    "description": "confidence",
    "target_persons": "confidence",
    "purpose_terms": "confidence",
    "benefit": "confidence",
    "example_affairs": "confidence",
    "distinguish_from": "confidence",
    "notes": "confidence",
}
CASE_FIELD_LABELS = {
    "analogous_statutory_affair": "準ずる法定事務",
    "case_number": "事例番号",
    "information_kinds": "照会する情報の種類（特定個人情報）",
    "information_queriers": "情報照会者",
    "information_providers": "情報提供者",
    "aliases": "実務上の呼び方（別名）",
    "old_appendix2_item": "旧別表第二の項",
    "description": "概要",
    "target_persons": "対象者",
    "purpose_terms": "目的を表す語",
    "benefit": "給付の内容",
    "example_affairs": "事務名の例",
    "distinguish_from": "紛らわしいもの",
    "notes": "補足",
}

COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (
        Collection("cases", "事例", "cases.yaml", None, CASE_FIELDS, CASE_FIELD_LABELS),
        Collection("qa", "Q&A", "qa.yaml", None, {"question": "confidence", "answer": "confidence"},
                   {"question": "質問", "answer": "回答"}),
        Collection("statutory", "法定事務", "statutory.yaml", None,
                   {"aliases": "confidence", "law": "confidence", "linkage_basis": "confidence", "note": "confidence"},
                   {"aliases": "通称", "law": "法律", "linkage_basis": "情報連携の根拠", "note": "補足"}),
        Collection("procedure.checklist", "チェック項目", "procedure.yaml", "checklist",
                   {"label": "confidence", "question": "confidence", "why": "confidence"},
                   {"label": "項目", "question": "確認すること", "why": "理由"}),
        Collection("procedure.schedule", "スケジュール", "procedure.yaml", "schedule", {"fact": "confidence"},
                   {"fact": "内容"}),
        Collection("procedure.flow", "手続の流れ", "procedure.yaml", "flow",
                   {"name": "confidence", "description": "confidence"}, {"name": "名称", "description": "説明"}),
    )
}
CONFIDENCE_LABELS = {
    "confidence": "確度",
    "analogous_statutory_confidence": "準ずる法定事務の確度",
    "case_number_confidence": "事例番号の確度",
    "information_confidence": "照会する情報・照会者・提供者の確度",
}


@dataclass(frozen=True)
class FactRef:
    collection: Collection
    key: str
    field: str

    @property
    def path(self) -> str:
        return f"{self.collection.name}.{self.key}.{self.field}"

    @property
    def entry_path(self) -> str:
        return f"{self.collection.name}.{self.key}"

    @property
    def confidence_field(self) -> str:
        return self.collection.fields[self.field]

    @property
    def field_label(self) -> str:
        return self.collection.field_labels.get(self.field, self.field)


def parse_path(path: str) -> FactRef:
    """`cases.5.aliases` → the fact it names, or OverlayError with what is wrong and what is allowed."""
    text = (path or "").strip()
    for name in sorted(COLLECTIONS, key=len, reverse=True):
        if text.startswith(name + "."):
            collection = COLLECTIONS[name]
            key, _, field_name = text[len(name) + 1 :].partition(".")
            if not key or not field_name:
                break
            if field_name not in collection.fields:
                allowed = "、".join(collection.fields)
                raise OverlayError(f"{collection.label}の項目 {field_name!r} は補正できません（補正できる項目: {allowed}）")
            if name == "cases":
                key = key.strip("()（）")
                if not key.isdigit():
                    raise OverlayError(f"事例の番号 {key!r} は 1〜35 の数字で指定してください（例: cases.5.aliases）")
                key = str(int(key))
            return FactRef(collection, key, field_name)
    prefixes = "、".join(f"{n}.<id>.<項目>" for n in COLLECTIONS)
    raise OverlayError(f"項目の指定 {path!r} が読めません（{prefixes} の形で指定してください。例: cases.5.analogous_statutory_affair）")


def _entries(knowledge: Knowledge, collection: Collection) -> list[Any] | dict[int, Any]:
    if collection.name == "cases":
        return knowledge.cases
    if collection.name == "qa":
        return knowledge.qa
    if collection.name == "statutory":
        return knowledge.statutory
    assert collection.section is not None
    return getattr(knowledge.procedure, collection.section)


def entries_of(knowledge: Knowledge, collection: Collection) -> list[tuple[str, Sourced]]:
    items = _entries(knowledge, collection)
    if isinstance(items, dict):
        return [(str(key), entry) for key, entry in items.items()]
    return [(str(entry.id), entry) for entry in items]


def get_entry(knowledge: Knowledge, ref: FactRef) -> Sourced | None:
    items = _entries(knowledge, ref.collection)
    if isinstance(items, dict):
        return items.get(int(ref.key))
    return next((entry for entry in items if str(entry.id) == ref.key), None)


def _replace_entry(knowledge: Knowledge, ref: FactRef, entry: Sourced) -> None:
    items = _entries(knowledge, ref.collection)
    if isinstance(items, dict):
        items[int(ref.key)] = entry
        return
    for index, existing in enumerate(items):
        if str(existing.id) == ref.key:
            items[index] = entry
            return


def is_list_field(ref: FactRef) -> bool:
    entry_model = _model_of(ref.collection)
    annotation = entry_model.model_fields[ref.field].annotation
    return getattr(annotation, "__origin__", None) is list


def _model_of(collection: Collection) -> type[BaseModel]:
    from assistant.knowledge import models

    return {
        "cases": models.Case, "qa": models.QAPair, "statutory": models.StatutoryAffair,
        "procedure.checklist": models.ChecklistItem, "procedure.schedule": models.ScheduleFact,
        "procedure.flow": models.FlowStep,
    }[collection.name]


def is_optional_field(ref: FactRef) -> bool:
    return not _model_of(ref.collection).model_fields[ref.field].is_required() and not is_list_field(ref)


# -- corrections and the overlay ----------------------------------------------------------------------
@dataclass(frozen=True)
class Correction:
    """One change of one fact, as stored and exported (who, when, before / after, why)."""

    id: int
    path: str
    before: Any
    after: Any
    confidence: str | None = None  # the new confidence of the fact (None: unchanged)
    confidence_before: str | None = None
    source: str | None = None  # a source id: a corpus source or one of the overlay's sources
    as_of: str | None = None
    reason: str = ""
    user: str | None = None
    at: str = ""
    batch: str | None = None  # corrections made together (one table import)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "path": self.path, "before": self.before, "after": self.after,
            "confidence": self.confidence, "confidence_before": self.confidence_before, "source": self.source,
            "as_of": self.as_of, "reason": self.reason, "user": self.user, "at": self.at, "batch": self.batch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> Correction:
        if not isinstance(data, dict):
            raise OverlayError(f"{where}補正は key: value の形で書いてください")
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise OverlayError(f"{where}知らない項目があります: {', '.join(sorted(unknown))}")
        for required in ("id", "path", "after"):
            if required not in data:
                raise OverlayError(f"{where}{required} がありません")
        confidence = data.get("confidence")
        if confidence not in (None, *CONFIDENCES):
            raise OverlayError(f"{where}confidence は 確認済み か 要確認 です: {confidence!r}")
        parse_path(str(data["path"]))
        try:
            number = int(data["id"])
        except (TypeError, ValueError) as exc:
            raise OverlayError(f"{where}id は数字です: {data['id']!r}") from exc
        return cls(
            id=number, path=str(data["path"]), before=data.get("before"), after=data.get("after"),
            confidence=confidence, confidence_before=data.get("confidence_before"),
            source=None if data.get("source") is None else str(data["source"]),
            as_of=None if data.get("as_of") is None else str(data["as_of"]), reason=str(data.get("reason") or ""),
            user=data.get("user"), at=str(data.get("at") or ""), batch=data.get("batch"),
        )


@dataclass(frozen=True)
class Overlay:
    corrections: tuple[Correction, ...] = ()
    sources: tuple[CuratedSource, ...] = ()
    revision: int = 0

    @property
    def empty(self) -> bool:
        return not self.corrections

    def with_correction(self, correction: Correction, source: CuratedSource | None = None) -> Overlay:
        sources = self.sources
        if source is not None and all(s.id != source.id for s in sources):
            sources = (*sources, source)
        return Overlay((*self.corrections, correction), sources, self.revision)

    def to_dict(self) -> dict[str, Any]:
        used = {c.source for c in self.corrections}
        return {
            "format": OVERLAY_FORMAT,
            "revision": self.revision,
            "sources": [s.model_dump(exclude_none=True) for s in self.sources if s.id in used],
            "corrections": [c.to_dict() for c in self.corrections],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Overlay:
        if not isinstance(data, dict):
            raise OverlayError("補正ファイルの形式が違います（format・sources・corrections を持つ YAML です）")
        if data.get("format") != OVERLAY_FORMAT:
            raise OverlayError(f"補正ファイルの format {data.get('format')!r} には対応していません（{OVERLAY_FORMAT} のみ）")
        sources = []
        for number, raw in enumerate(data.get("sources") or [], start=1):
            try:
                sources.append(CuratedSource.model_validate(raw))
            except ValidationError as exc:
                raise OverlayError(f"sources の {number} 番目: {_describe(exc)}") from exc
        corrections = tuple(
            Correction.from_dict(raw, f"corrections の {number} 番目: ")
            for number, raw in enumerate(data.get("corrections") or [], start=1)
        )
        return cls(corrections, tuple(sources), int(data.get("revision") or 0))


Status = Literal["applied", "in_corpus", "conflict", "invalid", "missing"]
STATUS_LABELS: dict[str, str] = {
    "applied": "適用中",
    "in_corpus": "corpus に反映済み",
    "conflict": "適用できません（元の値が変わっています）",
    "invalid": "適用できません（検査に通りません）",
    "missing": "適用できません（対象がありません）",
}


@dataclass(frozen=True)
class Outcome:
    """What became of one correction when the overlay was applied to the loaded corpus."""

    correction: int
    path: str
    status: Status
    message: str = ""

    @property
    def applies(self) -> bool:
        return self.status in ("applied", "in_corpus")

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"correction": self.correction, "path": self.path, "status": self.status, "label": self.label,
                "message": self.message}


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(entry)'}: {e['msg']}" for e in error.errors())


def shown(value: Any) -> str:
    """A fact value as a person reads it."""
    if value is None or value == "" or value == []:
        return "（なし）"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, list) or isinstance(right, list):
        return list(left or []) == list(right or [])
    return (left or None) == (right or None)


def newest_dated(knowledge: Knowledge, source_ids: list[str]) -> str | None:
    dates = [knowledge.sources[s].as_of for s in source_ids if s in knowledge.sources and knowledge.sources[s].as_of]
    return max(dates) if dates else None


def _apply_one(knowledge: Knowledge, correction: Correction) -> tuple[Outcome, FactRef | None]:
    from assistant.knowledge.loader import entry_problem

    def outcome(status: Status, message: str = "") -> tuple[Outcome, FactRef | None]:
        return Outcome(correction.id, correction.path, status, message), ref

    ref = None
    try:
        ref = parse_path(correction.path)
    except OverlayError as exc:
        return outcome("invalid", str(exc))
    entry = get_entry(knowledge, ref)
    if entry is None:
        return outcome("missing", f"{ref.collection.file} に {ref.entry_path} がありません")
    if correction.source is not None and correction.source not in knowledge.sources:
        return outcome("invalid", f"出典 {correction.source!r} が出典の一覧にありません")
    current = getattr(entry, ref.field)
    current_confidence = getattr(entry, ref.confidence_field)
    settled = (correction.confidence is None or current_confidence == correction.confidence) and (
        correction.source is None or correction.source in entry.sources
    )
    if _same(current, correction.after) and settled:
        return outcome("in_corpus", "corpus が既に同じ内容です")
    if not _same(current, correction.before) and not _same(current, correction.after):
        return outcome(
            "conflict",
            f"{ref.collection.file} の今の値「{shown(current)}」が、補正したときの値「{shown(correction.before)}」と異なります。"
            "内容を確かめて、必要なら補正し直してください",
        )
    data = entry.model_dump()
    data[ref.field] = correction.after
    if correction.confidence is not None:
        data[ref.confidence_field] = correction.confidence
    if correction.source is not None:
        data["sources"] = [correction.source, *[s for s in data["sources"] if s != correction.source]]
        data["as_of"] = newest_dated(knowledge, data["sources"]) or data["as_of"]
    try:
        updated = type(entry).model_validate(data)
    except ValidationError as exc:
        return outcome("invalid", f"{ref.collection.file} の検査に通りません: {_describe(exc)}")
    problem = entry_problem(knowledge, ref.collection.file, f"(id={ref.key})", updated)
    if problem:
        return outcome("invalid", problem)
    _replace_entry(knowledge, ref, updated)
    return outcome("applied")


def apply_overlay(base: Knowledge, overlay: Overlay) -> Knowledge:
    """A copy of `base` with the corrections applied in order; `outcomes` says what became of each one."""
    knowledge = base.copy()
    for source in overlay.sources:
        knowledge.sources.setdefault(source.id, source)
    outcomes: list[Outcome] = []
    touched: dict[str, FactRef] = {}
    for correction in overlay.corrections:
        result, ref = _apply_one(knowledge, correction)
        outcomes.append(result)
        if result.status == "applied" and ref is not None:
            touched[ref.entry_path] = ref
    knowledge.overlay_outcomes = outcomes
    knowledge.overlay_revision = overlay.revision
    if touched:
        changed = {path: get_entry(knowledge, ref).model_dump() for path, ref in sorted(touched.items())}  # type: ignore[union-attr]
        used = sorted({s for entry in changed.values() for s in entry["sources"]} & {s.id for s in overlay.sources})
        payload = {"entries": changed, "sources": {s: knowledge.sources[s].model_dump() for s in used}}
        digest = hashlib.sha256(base.content_hash.encode())
        digest.update(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        knowledge.content_hash = digest.hexdigest()[:16]
        knowledge.overlay_entries = sorted(touched)
    return knowledge


def knowledge_facts(knowledge: Knowledge) -> dict[str, Any]:
    """Every fact of a knowledge base as plain data (to compare two of them, e.g. an overlay and its merge)."""
    return {
        "sources": {k: v.model_dump() for k, v in sorted(knowledge.sources.items())},
        "cases": {k: v.model_dump() for k, v in knowledge.cases.items()},
        "statutory": [a.model_dump() for a in knowledge.statutory],
        "notifications": {k: v.model_dump() for k, v in knowledge.notifications.items()},
        "procedure": knowledge.procedure.model_dump(),
        "guidance": [p.model_dump() for p in knowledge.guidance],
        "qa": [q.model_dump() for q in knowledge.qa],
        "changes": [c.model_dump() for c in knowledge.changes],
    }


@dataclass
class FactState:
    """One fact as it reads now: its value, the confidence that covers it, the entry's date and sources."""

    ref: FactRef
    entry_label: str
    value: Any
    confidence: str
    as_of: str
    sources: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.ref.path


def fact_state(knowledge: Knowledge, ref: FactRef) -> FactState:
    entry = get_entry(knowledge, ref)
    if entry is None:
        raise OverlayError(f"{ref.entry_path} は {ref.collection.file} にありません")
    confidence = getattr(entry, ref.confidence_field) or entry.confidence
    return FactState(ref, ref.collection.entry_label(ref.key, entry), getattr(entry, ref.field), confidence,
                     entry.as_of, list(entry.sources))


def all_facts(knowledge: Knowledge) -> list[FactState]:
    facts = []
    for collection in COLLECTIONS.values():
        for key, _entry in entries_of(knowledge, collection):
            for name in collection.fields:
                facts.append(fact_state(knowledge, FactRef(collection, key, name)))
    return facts
