"""Load and validate corpus/. A malformed entry fails naming the file, the entry and the field."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from assistant.yamlio import load_yaml

from assistant.knowledge.models import (
    CONFIRMED,
    UNCONFIRMED_MARK,
    Case,
    ClassifierConfig,
    CuratedSource,
    GuidancePage,
    LegalChange,
    NotificationRules,
    NotificationType,
    Procedure,
    QAPair,
    RoutingRule,
    Source,
    Sourced,
    StatutoryAffair,
)

if TYPE_CHECKING:
    from assistant.knowledge.overlay import Outcome, Overlay

CASE_IDS = range(1, 36)
# Sources named by corrections and merged into corpus/ (ids are file names or citation texts, not S-numbers).
CURATED_SOURCES_FILE = "sources-curated.yaml"
Model = TypeVar("Model", bound=BaseModel)


class CorpusError(ValueError):
    """A corpus file or entry is malformed."""


@dataclass
class Knowledge:
    root: Path
    sources: dict[str, Source]
    cases: dict[int, Case]
    statutory: list[StatutoryAffair]
    notifications: dict[str, NotificationType]
    procedure: Procedure
    guidance: list[GuidancePage]
    qa: list[QAPair]
    routing: list[RoutingRule]
    changes: list[LegalChange]
    classifier: ClassifierConfig
    notification_rules: NotificationRules
    content_hash: str = ""
    files: list[str] = field(default_factory=list)
    # With an overlay of corrections: what became of each one, the overlay's revision, the entries it changed.
    overlay_outcomes: list[Outcome] = field(default_factory=list)
    overlay_revision: int = 0
    overlay_entries: list[str] = field(default_factory=list)

    def source_as_of(self, source_id: str) -> str | None:
        source = self.sources.get(source_id)
        return source.as_of if source else None

    def copy(self) -> Knowledge:
        """A copy whose containers of fact entries can be changed without touching this one (entries are shared
        until replaced)."""
        procedure = self.procedure.model_copy(
            update={"flow": list(self.procedure.flow), "schedule": list(self.procedure.schedule),
                    "checklist": list(self.procedure.checklist)}
        )
        return dataclasses.replace(
            self, sources=dict(self.sources), cases=dict(self.cases), statutory=list(self.statutory), qa=list(self.qa),
            procedure=procedure, files=list(self.files), overlay_outcomes=[], overlay_entries=[],
        )


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path.name}: YAML として読めません: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path.name}: UTF-8 ではありません: {exc}") from exc


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(entry)"
        parts.append(f"field {where}: {item['msg']}")
    return "; ".join(parts)


def _validate(model: type[Model], data: Any, file_name: str, entry: str) -> Model:
    if not isinstance(data, dict):
        raise CorpusError(f"{file_name}: entry {entry}: an entry must be a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CorpusError(f"{file_name}: entry {entry}: {_describe(exc)}") from exc


def _validate_list(model: type[Model], path: Path) -> list[Model]:
    data = _read_yaml(path)
    if not isinstance(data, list):
        raise CorpusError(f"{path.name}: the file must hold a list of entries")
    items = []
    for index, raw in enumerate(data):
        key = raw.get("id", raw.get("type")) if isinstance(raw, dict) else None
        entry = f"#{index + 1}" + (f" (id={key})" if key is not None else "")
        items.append(_validate(model, raw, path.name, entry))
    return items


def _split_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise CorpusError(f"guidance/{path.name}: front matter (---) is missing")
    try:
        _, header, body = text.split("---", 2)
    except ValueError as exc:
        raise CorpusError(f"guidance/{path.name}: front matter is not closed with ---") from exc
    try:
        meta = load_yaml(header) or {}
    except yaml.YAMLError as exc:
        raise CorpusError(f"guidance/{path.name}: front matter is not valid YAML: {exc}") from exc
    return meta, body


def parse_markdown_sections(body: str) -> list[dict[str, str]]:
    """Split Markdown into sections at `##` headings (text before the first heading is kept)."""
    sections: list[dict[str, str]] = []
    heading, lines = "概要", []
    for line in body.splitlines():
        if line.startswith("## ") or line.startswith("# "):
            if "".join(lines).strip():
                sections.append({"heading": heading, "text": "\n".join(lines).strip()})
            heading, lines = line.lstrip("#").strip(), []
        else:
            lines.append(line)
    if "".join(lines).strip():
        sections.append({"heading": heading, "text": "\n".join(lines).strip()})
    return sections


def _load_guidance(folder: Path) -> list[GuidancePage]:
    pages = []
    for path in sorted(folder.glob("*.md")):
        meta, body = _split_front_matter(path)
        meta["sections"] = parse_markdown_sections(body)
        pages.append(_validate(GuidancePage, meta, f"guidance/{path.name}", f"(id={meta.get('id')})"))
    return pages


def _entries(knowledge: Knowledge) -> Iterator[tuple[str, str, Sourced]]:
    """Every fact-bearing entry with the file and the entry label used in error messages."""
    for case in knowledge.cases.values():
        yield "cases.yaml", f"(id={case.id})", case
    for affair in knowledge.statutory:
        yield "statutory.yaml", f"(id={affair.id})", affair
    for notice in knowledge.notifications.values():
        yield "notifications.yaml", f"(id={notice.type})", notice
    for item in [*knowledge.procedure.flow, *knowledge.procedure.schedule, *knowledge.procedure.checklist]:
        yield "procedure.yaml", f"(id={item.id})", item
    for page in knowledge.guidance:
        yield f"guidance/{page.id}.md", f"(id={page.id})", page
    for pair in knowledge.qa:
        yield "qa.yaml", f"(id={pair.id})", pair
    for change in knowledge.changes:
        yield "changes.yaml", f"(id={change.id})", change
    for rule in knowledge.notification_rules.rules:
        yield "notification-rules.yaml", f"(id={rule.id})", rule


def _reference_problem(knowledge: Knowledge, file_name: str, entry: str, item: Sourced) -> str | None:
    missing = [s for s in item.sources if s not in knowledge.sources]
    if missing:
        return f"{file_name}: entry {entry}: field sources: unknown source id(s) {', '.join(missing)}"
    return None


def _as_of_problem(knowledge: Knowledge, file_name: str, entry: str, item: Sourced) -> str | None:
    dated = [(knowledge.sources[s].as_of, s) for s in item.sources if knowledge.sources[s].as_of]
    if not dated:
        return f"{file_name}: entry {entry}: field sources: 時点（as_of）の分かる出典が一つもありません"
    newest = max(d for d, _ in dated)
    if item.as_of != newest:
        ids = "、".join(s for d, s in dated if d == newest)
        return (
            f"{file_name}: entry {entry}: field as_of: {item.as_of} は、根拠とする出典のうち最も新しい時点 "
            f"{newest}（{ids}）と一致しません"
        )
    return None


def _mark_problem(knowledge: Knowledge, file_name: str, entry: str, item: Sourced) -> str | None:
    for group in item.text_groups():
        if group.confidence != CONFIRMED:
            continue
        for field_name, text in group.texts:
            if UNCONFIRMED_MARK in text:
                return (
                    f"{file_name}: entry {entry}: field {field_name}: {UNCONFIRMED_MARK}を含む記述が"
                    "確認済みとされています（要確認にするか、確認できた記述と分けてください）"
                )
    return None


def entry_problem(knowledge: Knowledge, file_name: str, entry: str, item: Sourced) -> str | None:
    """The first rule of the corpus that one entry breaks (sources known, as_of rule, 【要確認】 rule), or None."""
    for check in (_reference_problem, _as_of_problem, _mark_problem):
        problem = check(knowledge, file_name, entry, item)
        if problem:
            return problem
    return None


def _check_each(knowledge: Knowledge, check) -> None:  # noqa: ANN001
    for file_name, entry, item in _entries(knowledge):
        problem = check(knowledge, file_name, entry, item)
        if problem:
            raise CorpusError(problem)


def _check_references(knowledge: Knowledge) -> None:
    _check_each(knowledge, _reference_problem)
    for affair in knowledge.statutory:
        bad = [c for c in affair.related_cases if c not in knowledge.cases]
        if bad:
            raise CorpusError(f"statutory.yaml: entry (id={affair.id}): field related_cases: unknown case id(s) {bad}")
    for pair in knowledge.qa:
        bad = [c for c in pair.cases if c not in knowledge.cases]
        if bad:
            raise CorpusError(f"qa.yaml: entry (id={pair.id}): field cases: unknown case id(s) {bad}")


def _check_as_of(knowledge: Knowledge) -> None:
    """SCHEMA rule: an entry's as_of is the newest as_of among the sources it lists (undated sources do not count)."""
    _check_each(knowledge, _as_of_problem)


def _check_unconfirmed_marks(knowledge: Knowledge) -> None:
    """SCHEMA rule: text marked 【要確認】 belongs to an entry (or field group) whose confidence is 要確認."""
    _check_each(knowledge, _mark_problem)


def _unique(items: list[Any], key: str, file_name: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, key)
        if value in seen:
            raise CorpusError(f"{file_name}: entry (id={value}): field {key}: duplicate id")
        seen.add(value)


# Bump when assistant/knowledge/chunks.py renders the corpus differently, so that indexes are rebuilt.
RENDERING_VERSION = "4"


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256(RENDERING_VERSION.encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_knowledge(root: Path, overlay: Overlay | None = None, *, cache_dir: Path | None = None) -> Knowledge:
    """corpus/ validated, with the corrections of `overlay` applied over it (see assistant.knowledge.overlay).

    The corpus itself must pass every check; a correction that does not apply is reported in `overlay_outcomes`
    and leaves its fact as the corpus has it. `content_hash` covers the corrections that applied.
    With `cache_dir`, the validated corpus is kept there keyed by the files' and the models' hash, so that a
    process start does not parse and validate the same YAML again."""
    root = Path(root)
    files = sorted([*root.glob("*.yaml"), *(root / "guidance").glob("*.md")])
    content_hash = _hash_files(files)
    cached = _cache_file(cache_dir, root, content_hash) if cache_dir is not None else None
    knowledge = _read_cached(cached) if cached is not None else None
    if knowledge is None:
        knowledge = _load_validated(root, files, content_hash)
        if cached is not None:
            _write_cached(cached, knowledge)
    if overlay is not None:
        from assistant.knowledge.overlay import apply_overlay

        knowledge = apply_overlay(knowledge, overlay)
    return knowledge


KNOWLEDGE_CACHE_PREFIX = "knowledge-"


def _cache_file(cache_dir: Path, root: Path, content_hash: str) -> Path:
    code = [Path(__file__), Path(__file__).with_name("models.py")]
    digest = hashlib.sha256(f"{root.resolve()}|{content_hash}|{_hash_files(code)}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{KNOWLEDGE_CACHE_PREFIX}{digest}.pickle"


def _read_cached(path: Path) -> Knowledge | None:
    """The cached corpus, or None when there is none or it cannot be read (it is then validated again)."""
    try:
        with path.open("rb") as handle:
            knowledge = pickle.load(handle)  # noqa: S301 - written by this code under ASSISTANT_HOME
    except Exception:  # noqa: BLE001 - a damaged or foreign cache is ignored, never trusted
        return None
    return knowledge if isinstance(knowledge, Knowledge) else None


def _write_cached(path: Path, knowledge: Knowledge) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(knowledge, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        for stale in path.parent.glob(f"{KNOWLEDGE_CACHE_PREFIX}*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only or full cache folder only costs the next start its validation


def _load_validated(root: Path, files: list[Path], content_hash: str) -> Knowledge:
    required = [
        "classifier.yaml", "cases.yaml", "statutory.yaml", "notifications.yaml", "notification-rules.yaml", "procedure.yaml",
        "qa.yaml", "routing.yaml",
    ]
    for name in required:
        if not (root / name).is_file():
            raise CorpusError(f"{name}: file is missing from {root}")
    sources: list[Source] = []
    for path in sorted(root.glob("sources*.yaml")):
        sources.extend(_validate_list(CuratedSource if path.name == CURATED_SOURCES_FILE else Source, path))
    _unique(sources, "id", "sources*.yaml")
    cases = _validate_list(Case, root / "cases.yaml")
    _unique(cases, "id", "cases.yaml")
    missing_cases = [i for i in CASE_IDS if i not in {c.id for c in cases}]
    if missing_cases:
        raise CorpusError(f"cases.yaml: case ids missing: {missing_cases}")
    notifications = _validate_list(NotificationType, root / "notifications.yaml")
    _unique(notifications, "type", "notifications.yaml")
    procedure_data = _read_yaml(root / "procedure.yaml")
    procedure = _validate(Procedure, procedure_data, "procedure.yaml", "(root)")
    statutory = _validate_list(StatutoryAffair, root / "statutory.yaml")
    _unique(statutory, "id", "statutory.yaml")
    qa = _validate_list(QAPair, root / "qa.yaml")
    _unique(qa, "id", "qa.yaml")
    changes = _validate_list(LegalChange, root / "changes.yaml") if (root / "changes.yaml").is_file() else []
    classifier = _validate(ClassifierConfig, _read_yaml(root / "classifier.yaml"), "classifier.yaml", "(root)")
    bad_cases = [c for c in classifier.signatures if c not in {case.id for case in cases}]
    if bad_cases:
        raise CorpusError(f"classifier.yaml: entry signatures: unknown case id(s) {bad_cases}")
    knowledge = Knowledge(
        root=root,
        sources={s.id: s for s in sources},
        cases={c.id: c for c in sorted(cases, key=lambda c: c.id)},
        statutory=statutory,
        notifications={n.type: n for n in notifications},
        procedure=procedure,
        guidance=_load_guidance(root / "guidance"),
        qa=qa,
        routing=_validate_list(RoutingRule, root / "routing.yaml"),
        changes=changes,
        classifier=classifier,
        notification_rules=_validate(
            NotificationRules, _read_yaml(root / "notification-rules.yaml"), "notification-rules.yaml", "(root)"
        ),
        content_hash=content_hash,
        files=[str(p.relative_to(root)) for p in files],
    )
    _check_references(knowledge)
    _check_as_of(knowledge)
    _check_unconfirmed_marks(knowledge)
    return knowledge
