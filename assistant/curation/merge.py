"""Merge an exported overlay into corpus/ files, for a maintainer who reviewed it.

Only the lines of the fields that change are rewritten (comments, order and style of everything else stay as they
are), the sources that corrections named are appended to corpus/sources-curated.yaml, and the result is checked
before anything is written: the merged corpus, loaded on its own, must give exactly the knowledge that the corpus
with the overlay gives. Corrections that do not apply to this corpus are reported and left out.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.yamlio import load_yaml

from assistant.knowledge import Knowledge, load_knowledge
from assistant.knowledge.loader import CURATED_SOURCES_FILE
from assistant.knowledge.overlay import (
    COLLECTIONS,
    FactRef,
    Outcome,
    Overlay,
    OverlayError,
    apply_overlay,
    get_entry,
    knowledge_facts,
    parse_path,
)

CURATED_HEADER = (
    "# 補正（assistant knowledge merge）で取り込んだ出典。id は人が出典を呼ぶときの形（ファイル名・ページ・時点）。\n"
)


class MergeError(ValueError):
    """The overlay cannot be merged into these files; the message is for the maintainer."""


@dataclass
class MergeReport:
    corpus: Path
    files: list[str] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": str(self.corpus), "files": self.files, "entries": self.entries, "sources": self.sources,
                "skipped": [o.to_dict() for o in self.skipped]}


def read_overlay(path: Path) -> Overlay:
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MergeError(f"{Path(path).name} を補正ファイルとして読めません（{exc}）") from exc
    try:
        return Overlay.from_dict(data)
    except OverlayError as exc:
        raise MergeError(f"{Path(path).name}: {exc}") from exc


# -- rewriting one field of one entry in a YAML file ------------------------------------------------------
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str) and DATE.match(value):
        return f'"{value}"'  # as the corpus writes dates
    text = yaml.safe_dump(value, allow_unicode=True, width=10**9, default_flow_style=True)
    return text.removesuffix("\n").removesuffix("\n...").rstrip("\n")


def _field_lines(name: str, value: Any, indent: str, flow: bool) -> list[str]:
    if isinstance(value, list):
        if flow or not value:
            return [f"{indent}{name}: {_scalar(list(value))}"]
        return [f"{indent}{name}:", *(f"{indent}  - {_scalar(item)}" for item in value)]
    return [f"{indent}{name}: {_scalar(value)}"]


def _section_bounds(lines: list[str], section: str | None) -> tuple[int, int]:
    if section is None:
        return 0, len(lines)
    start = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(section)}:\s*(#.*)?$", line)), None)
    if start is None:
        raise MergeError(f"{section}: の節が見つかりません")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^[^\s#]", lines[i])), len(lines))
    return start + 1, end


def _entry_bounds(lines: list[str], collection: Collection, key: str) -> tuple[int, int, str]:
    low, high = _section_bounds(lines, collection.section)
    pattern = re.compile(rf"^(\s*)- id: ['\"]?{re.escape(key)}['\"]?\s*(#.*)?$")
    for index in range(low, high):
        match = pattern.match(lines[index])
        if match:
            dash = match.group(1)
            end = index + 1
            while end < high:
                line = lines[end]
                if line.strip() and not line.lstrip().startswith("#"):
                    indent = len(line) - len(line.lstrip())
                    if indent <= len(dash):
                        break
                end += 1
            while end > index + 1 and not lines[end - 1].strip():
                end -= 1  # the blank lines between entries stay where they are
            return index, end, dash + "  "
    raise MergeError(f"{collection.file}: {collection.name}.{key} が見つかりません")


def _field_extent(lines: list[str], start: int, end: int, indent: str, name: str) -> tuple[int, int] | None:
    """The lines of field `name` in the entry (its key line and continuation lines), or None."""
    head = re.compile(rf"^{re.escape(indent)}{re.escape(name)}:(\s|$)")
    for index in range(start, end):
        if head.match(lines[index]):
            stop = index + 1
            while stop < end and (not lines[stop].strip() or len(lines[stop]) - len(lines[stop].lstrip()) > len(indent)):
                stop += 1
            while stop > index + 1 and not lines[stop - 1].strip():
                stop -= 1
            return index, stop
    return None


def _set_field(lines: list[str], start: int, end: int, indent: str, name: str, value: Any,
               order: list[str]) -> list[str]:
    """The entry's lines with `name` set to `value`; a field the entry lacks goes after the field that precedes it
    in the model (or before `sources:`)."""
    extent = _field_extent(lines, start, end, indent, name)
    if extent is not None:
        index, stop = extent
        flow = lines[index].split(":", 1)[1].strip().startswith("[")
        return lines[:index] + _field_lines(name, value, indent, flow) + lines[stop:]
    anchor = next((i for i in range(start, end) if lines[i].startswith(f"{indent}sources:")), end)
    for previous in reversed(order[: order.index(name)] if name in order else []):
        found = _field_extent(lines, start, end, indent, previous)
        if found is not None:
            anchor = found[1]
            break
    return lines[:anchor] + _field_lines(name, value, indent, False) + lines[anchor:]


def _entry_ref(entry_path: str) -> FactRef:
    collection = COLLECTIONS[entry_path.rsplit(".", 1)[0]]
    return parse_path(f"{entry_path}.{next(iter(collection.fields))}")


def _entry_changes(base: Knowledge, target: Knowledge, entry_path: str) -> tuple[FactRef, dict[str, Any], list[str]]:
    ref = _entry_ref(entry_path)
    old, new = get_entry(base, ref), get_entry(target, ref)
    assert old is not None and new is not None
    before, after = old.model_dump(), new.model_dump()
    changed = {name: value for name, value in after.items() if before.get(name) != value}
    return ref, changed, list(type(new).model_fields)


def _rewrite(corpus: Path, base: Knowledge, target: Knowledge, report: MergeReport) -> dict[str, str]:
    texts: dict[str, list[str]] = {}
    for entry_path in target.overlay_entries:
        ref, changed, order = _entry_changes(base, target, entry_path)
        if not changed:
            continue
        collection = ref.collection
        lines = texts.setdefault(collection.file, (corpus / collection.file).read_text(encoding="utf-8").split("\n"))
        for name in order:
            if name in changed:
                start, end, indent = _entry_bounds(lines, collection, ref.key)
                lines[:] = _set_field(lines, start, end, indent, name, changed[name], order)
        report.entries.append(entry_path)
    used = {s for path in target.overlay_entries for s in get_entry(target, _entry_ref(path)).sources}  # type: ignore[union-attr]
    new_sources = [target.sources[s] for s in sorted(used) if s not in base.sources]
    if new_sources:
        path = corpus / CURATED_SOURCES_FILE
        existing = path.read_text(encoding="utf-8") if path.is_file() else CURATED_HEADER
        added = yaml.safe_dump([s.model_dump(exclude_none=True) for s in new_sources], allow_unicode=True,
                               sort_keys=False, width=10**9)
        texts[CURATED_SOURCES_FILE] = (existing.rstrip("\n") + "\n\n" + added).split("\n")
        report.sources = [s.id for s in new_sources]
    return {name: "\n".join(lines) for name, lines in texts.items()}


def merge_overlay(overlay: Overlay, corpus: Path) -> MergeReport:
    """Write the overlay's corrections into the corpus files (checked on a copy first)."""
    corpus = Path(corpus)
    base = load_knowledge(corpus)
    target = apply_overlay(base, overlay)
    report = MergeReport(corpus, skipped=[o for o in target.overlay_outcomes if not o.applies])
    texts = _rewrite(corpus, base, target, report)
    if not texts:
        return report
    with tempfile.TemporaryDirectory(prefix="corpus-merge-") as scratch:
        trial = Path(scratch) / "corpus"
        shutil.copytree(corpus, trial)
        for name, text in texts.items():
            (trial / name).write_text(text, encoding="utf-8")
        merged = load_knowledge(trial)
        if knowledge_facts(merged) != knowledge_facts(target):
            different = [k for k, v in knowledge_facts(merged).items() if v != knowledge_facts(target)[k]]
            raise MergeError(f"取り込んだ結果が補正後の内容と一致しないため、書き込みませんでした（{'、'.join(different)}）")
    for name, text in texts.items():
        _write_atomic(corpus / name, text)
    report.files = sorted(texts)
    return report


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
