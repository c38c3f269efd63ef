"""Load and validate corpus/. A malformed entry fails naming the file, the entry and the field."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from assistant.knowledge.models import (
    Case,
    ClassifierConfig,
    GuidancePage,
    LegalChange,
    NotificationRules,
    NotificationType,
    Procedure,
    QAPair,
    RoutingRule,
    Source,
    StatutoryAffair,
)

CASE_IDS = range(1, 36)
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

    def source_as_of(self, source_id: str) -> str | None:
        source = self.sources.get(source_id)
        return source.as_of if source else None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
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
        meta = yaml.safe_load(header) or {}
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


def _check_references(knowledge: Knowledge) -> None:
    known = set(knowledge.sources)

    def check(file_name: str, entry: str, sources: list[str]) -> None:
        missing = [s for s in sources if s not in known]
        if missing:
            raise CorpusError(f"{file_name}: entry {entry}: field sources: unknown source id(s) {', '.join(missing)}")

    for case in knowledge.cases.values():
        check("cases.yaml", f"(id={case.id})", case.sources)
    for affair in knowledge.statutory:
        check("statutory.yaml", f"(id={affair.id})", affair.sources)
        bad = [c for c in affair.related_cases if c not in knowledge.cases]
        if bad:
            raise CorpusError(f"statutory.yaml: entry (id={affair.id}): field related_cases: unknown case id(s) {bad}")
    for notice in knowledge.notifications.values():
        check("notifications.yaml", f"(id={notice.type})", notice.sources)
    for item in [*knowledge.procedure.flow, *knowledge.procedure.schedule, *knowledge.procedure.checklist]:
        check("procedure.yaml", f"(id={item.id})", item.sources)
    for page in knowledge.guidance:
        check(f"guidance/{page.id}.md", f"(id={page.id})", page.sources)
    for pair in knowledge.qa:
        check("qa.yaml", f"(id={pair.id})", pair.sources)
        bad = [c for c in pair.cases if c not in knowledge.cases]
        if bad:
            raise CorpusError(f"qa.yaml: entry (id={pair.id}): field cases: unknown case id(s) {bad}")
    for change in knowledge.changes:
        check("changes.yaml", f"(id={change.id})", change.sources)


def _unique(items: list[Any], key: str, file_name: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, key)
        if value in seen:
            raise CorpusError(f"{file_name}: entry (id={value}): field {key}: duplicate id")
        seen.add(value)


# Bump when assistant/knowledge/chunks.py renders the corpus differently, so that indexes are rebuilt.
RENDERING_VERSION = "2"


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256(RENDERING_VERSION.encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_knowledge(root: Path) -> Knowledge:
    root = Path(root)
    required = [
        "classifier.yaml", "cases.yaml", "statutory.yaml", "notifications.yaml", "notification-rules.yaml", "procedure.yaml",
        "qa.yaml", "routing.yaml",
    ]
    for name in required:
        if not (root / name).is_file():
            raise CorpusError(f"{name}: file is missing from {root}")
    sources: list[Source] = []
    for path in sorted(root.glob("sources*.yaml")):
        sources.extend(_validate_list(Source, path))
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
    files = sorted([*root.glob("*.yaml"), *(root / "guidance").glob("*.md")])
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
        content_hash=_hash_files(files),
        files=[str(p.relative_to(root)) for p in files],
    )
    _check_references(knowledge)
    return knowledge
