"""Official case tables into the case registry: read a table (Excel, CSV, or a PDF whose text layer keeps the
cells apart), map its columns to case fields (header words from corpus/import-columns.yaml, adjustable), find the
case of each row, and plan the differences from the registry as corrections with the file as their source.

Nothing is stored while planning. A table with any bad row is refused as a whole: every bad row gets its own
message, and nothing changes until the table is fixed.
"""

from __future__ import annotations

import re
import secrets
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.yamlio import load_yaml

from assistant.advise.matching import fold
from assistant.audit import CLI_ACTOR, Actor
from assistant.curation.curator import (
    MAX_VALUE_CHARS,
    Curator,
    CurationError,
    PlannedChange,
    _check_date,
    brief,
)
from assistant.curation.store import HistoryRow
from assistant.ingest.errors import IngestError
from assistant.ingest.limits import ReadLimits
from assistant.ingest.loaders import TableRow, load_table
from assistant.knowledge import Knowledge
from assistant.knowledge.models import CONFIRMED, UNCONFIRMED, Case, CuratedSource
from assistant.knowledge.overlay import (
    COLLECTIONS,
    Correction,
    FactRef,
    Overlay,
    fact_state,
    shown,
)
from assistant.privacy import find_personal_data, mask_personal_data

COLUMNS_FILE = "import-columns.yaml"
KEY_FIELDS = ("case", "case_number", "name")
IGNORE = "-"
CASES = COLLECTIONS["cases"]
KEY_LABELS = {"case": "類型（事例の番号）", "case_number": "事例番号", "name": "事務の名称（照合だけに使う）"}


def field_label(name: str) -> str:
    return KEY_LABELS.get(name) or CASES.field_labels.get(name, name)


@dataclass(frozen=True)
class ColumnWords:
    """corpus/import-columns.yaml: which header words name which field, how list cells are split."""

    fields: dict[str, list[str]]
    ignored: list[str]
    separators: list[str]
    merge: dict[str, str]
    header_search_rows: int = 20
    header_min_columns: int = 2

    @classmethod
    def load(cls, corpus_dir: Path) -> ColumnWords:
        path = Path(corpus_dir) / COLUMNS_FILE
        try:
            data = load_yaml(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CurationError(f"{COLUMNS_FILE} を読めません（{exc}）") from exc
        fields = data.get("fields") or {}
        allowed = {*KEY_FIELDS, *CASES.fields}
        unknown = [name for name in fields if name not in allowed]
        if unknown:
            raise CurationError(f"{COLUMNS_FILE}: fields に知らない項目があります: {', '.join(unknown)}")
        return cls(
            fields={name: [str(w) for w in words or []] for name, words in fields.items()},
            ignored=[str(w) for w in data.get("ignored") or []],
            separators=[str(s) for s in data.get("list_separators") or ["、"]],
            merge={str(k): str(v) for k, v in (data.get("merge") or {}).items()},
            header_search_rows=int(data.get("header_search_rows", 20)),
            header_min_columns=int(data.get("header_min_columns", 2)),
        )

    def field_for(self, header: str) -> str | None:
        folded = fold(header)
        for name, words in self.fields.items():
            if folded == fold(name) or any(folded == fold(w) for w in words):
                return name
        return None

    def is_ignored(self, header: str) -> bool:
        return fold(header) in {fold(w) for w in self.ignored}

    def split(self, cell: str) -> list[str]:
        pattern = "|".join(re.escape(s) for s in self.separators)
        return list(dict.fromkeys(item.strip() for item in re.split(pattern, cell) if item.strip()))


def parse_mapping(items: list[str], words: ColumnWords) -> dict[str, str]:
    """`列名=項目` pairs typed by the user → folded header → field (or IGNORE)."""
    mapping: dict[str, str] = {}
    for item in items or []:
        header, sep, target = str(item).partition("=")
        header, target = header.strip(), target.strip()
        if not sep or not header or not target:
            raise CurationError(f"列の対応 {item!r} は「列名=項目」の形で書いてください（例: 準ずる事務=analogous_statutory_affair）")
        if target in (IGNORE, "無視"):
            mapping[fold(header)] = IGNORE
            continue
        name = words.field_for(target) or (target if target in {*KEY_FIELDS, *CASES.fields} else None)
        if name is None or name not in {*KEY_FIELDS, *words.fields}:
            choices = "、".join(words.fields)
            raise CurationError(f"列の対応 {item!r}: 項目 {target!r} は取り込めません（取り込める項目: {choices}）")
        mapping[fold(header)] = name
    return mapping


@dataclass
class RowPlan:
    where: str
    case: int | None = None
    changes: list[PlannedChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "case": self.case, "changes": [c.to_dict() for c in self.changes],
                "errors": self.errors, "warnings": self.warnings}


@dataclass
class ImportPlan:
    file_name: str
    columns: dict[str, str]  # header → field, as read
    unread_columns: list[str]
    rows: list[RowPlan]
    table_errors: list[str] = field(default_factory=list)
    source: CuratedSource | None = None

    @property
    def changes(self) -> list[PlannedChange]:
        return [c for row in self.rows for c in row.changes]

    @property
    def errors(self) -> list[str]:
        return self.table_errors + [f"{row.where}: {e}" for row in self.rows for e in row.errors]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def cases(self) -> list[int]:
        return sorted({row.case for row in self.rows if row.changes and row.case is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file_name, "columns": self.columns, "unread_columns": self.unread_columns,
            "ok": self.ok, "errors": self.errors, "cases": self.cases, "changes": len(self.changes),
            "source": self.source.id if self.source else None,
            "rows": [r.to_dict() for r in self.rows],
        }

    def summary_lines(self) -> list[str]:
        lines = [f"{self.file_name}: {len(self.rows)} 行、変更 {len(self.changes)} 件（事例 {len(self.cases)} 件）"]
        if self.columns:
            lines.append("読んだ列: " + "、".join(f"{h}→{field_label(f)}" for h, f in self.columns.items()))
        if self.unread_columns:
            lines.append("読まなかった列: " + "、".join(self.unread_columns))
        if self.source is not None and self.source.as_of is None and self.changes:
            lines.append("取り込むときは、表の時点（--as-of YYYY-MM-DD）を指定してください")
        for error in self.errors:
            lines.append(f"エラー: {error}")
        for row in self.rows:
            for warning in row.warnings:
                lines.append(f"注意: {row.where}: {warning}")
            for change in row.changes:
                parts = "、".join(f"{w}「{brief(b)}」→「{brief(a)}」" for w, b, a in change.diff() if w != "出典")
                lines.append(f"{row.where}: {change.before.entry_label} {change.ref.field_label}: {parts}")
        return lines


def _case_number_of(text: str) -> int | None:
    digits = re.findall(r"\d+", text)
    return int(digits[0]) if len(digits) == 1 else None


def _identify(knowledge: Knowledge, cells: dict[str, str], plan: RowPlan) -> Case | None:
    """The case a row is about: by our case number, the commission's case number or the exact name."""
    cases = knowledge.cases
    by_id: set[int] = set()
    if cells.get("case"):
        number = _case_number_of(cells["case"])
        if number is None:
            plan.errors.append(f"類型「{cells['case']}」は事例の番号（1〜35）で書いてください")
            return None
        if number not in cases:
            plan.errors.append(f"事例({number}) はありません（1〜35）")
            return None
        by_id = {number}
    by_number = {c.id for c in cases.values() if cells.get("case_number") and c.case_number == cells["case_number"]}
    by_name = {c.id for c in cases.values() if cells.get("name") and fold(c.name) == fold(cells["name"])}
    chosen = by_id or by_number
    if chosen and by_name and not chosen & by_name:
        key = f"類型「{cells['case']}」" if by_id else f"事例番号「{cells['case_number']}」"
        plan.errors.append(
            f"{key}は事例({min(chosen)})ですが、事務の名称は事例({min(by_name)})のものです。どちらが正しいか確かめてください"
        )
        return None
    if chosen and len(chosen) > 1:
        chosen = chosen & by_name if chosen & by_name else chosen
    if not chosen:
        chosen = by_name
    if not chosen:
        what = "、".join(f"{label}「{cells[k]}」" for k, label in (("case", "類型"), ("case_number", "事例番号"), ("name", "事務の名称"))
                        if cells.get(k))
        plan.errors.append(f"事例を特定できません（{what or '事例を特定する列が空です'} に当たる事例が登録にありません）")
        return None
    if len(chosen) > 1:
        names = "と".join(f"事例({i})" for i in sorted(chosen))
        plan.errors.append(f"事務の名称が{names}に当たります。類型（事例の番号）の列で区別してください")
        return None
    case = cases[next(iter(chosen))]
    if cells.get("name") and not by_name:
        plan.warnings.append(f"事務の名称「{brief(cells['name'])}」は事例({case.id})の登録の名称と異なります（名称は変えません）")
    return case


class TableImporter:
    def __init__(self, curator: Curator) -> None:
        self.curator = curator
        self.settings = curator.settings

    def read(self, path: Path) -> list[TableRow]:
        try:
            return load_table(Path(path), int(self.settings.max_file_mb * 1_000_000), ReadLimits.from_settings(self.settings))
        except IngestError as exc:
            raise CurationError(str(exc)) from exc

    def plan(self, path: Path, *, mapping: list[str] | None = None, as_of: str | None = None,
             title: str | None = None, confidence: str = CONFIRMED, name: str | None = None) -> ImportPlan:
        """The differences between the table and the registry, row by row (nothing is stored)."""
        path = Path(path)
        file_name = mask_personal_data(name or path.name)[0]
        words = ColumnWords.load(self.settings.corpus_dir)
        overrides = parse_mapping(mapping or [], words)
        if confidence not in (CONFIRMED, UNCONFIRMED):
            raise CurationError(f"確度は 確認済み か 要確認 で指定してください（{confidence!r} は使えません）")
        as_of = _check_date(as_of, "表の時点")
        rows = self.read(path)
        header_index, columns = self._header(rows, words, overrides)
        plan = ImportPlan(file_name, {}, [], [])
        if header_index is None:
            known = "、".join(words.fields["name"][:1] + words.fields.get("case_number", [])[:1]
                             + words.fields.get("analogous_statutory_affair", [])[:1])
            plan.table_errors.append(
                f"見出しの行が見つかりません（先頭 {words.header_search_rows} 行に、{known} などの列見出しが "
                f"{words.header_min_columns} つ以上ある行が必要です。見出しが違うときは --map 列名=項目 で対応を指定してください）"
            )
            return plan
        header = rows[header_index].cells
        plan.columns = {header[i]: f for i, f in columns.items()}
        plan.unread_columns = [h for i, h in enumerate(header) if h and i not in columns
                               and not words.is_ignored(h) and overrides.get(fold(h)) != IGNORE]
        if not set(columns.values()) & set(KEY_FIELDS):
            plan.table_errors.append("事例を特定する列（類型・事例番号・事務の名称のどれか）がありません")
            return plan
        if len(set(columns.values())) != len(columns):
            twice = sorted({f for f in columns.values() if list(columns.values()).count(f) > 1})
            plan.table_errors.append(f"同じ項目に当たる列が二つ以上あります（{'、'.join(twice)}）。--map で一つにしてください")
            return plan
        source = self._source(file_name, title, as_of)
        plan.source = source
        curator = self.curator
        overlay = curator.store.overlay()
        knowledge = curator.knowledge(overlay)
        seen: dict[int, str] = {}
        pending: list[tuple[RowPlan, FactRef, Correction]] = []
        next_id = overlay.revision + 1
        for row in rows[header_index + 1 :]:
            cells = {columns[i]: value for i, value in enumerate(row.cells) if i in columns and value.strip()}
            if not cells or [c for c in row.cells if c] == [c for c in header if c]:
                continue  # an empty row, or the header repeated (on each page of a PDF)
            row_plan = RowPlan(row.where)
            plan.rows.append(row_plan)
            for name_, value in cells.items():
                if len(value) > MAX_VALUE_CHARS:
                    row_plan.errors.append(f"{field_label(name_)}の値が長すぎます（{MAX_VALUE_CHARS} 文字まで）")
                elif find_personal_data(value):
                    row_plan.errors.append(f"{field_label(name_)}の値に個人情報のような記載があります")
            if row_plan.errors:
                continue
            case = _identify(knowledge, cells, row_plan)
            if case is None:
                continue
            row_plan.case = case.id
            if case.id in seen:
                row_plan.errors.append(f"事例({case.id}) は {seen[case.id]} と重複しています")
                continue
            seen[case.id] = row.where
            for correction in self._corrections(knowledge, case, cells, words, source, as_of, confidence, row.where, next_id):
                pending.append((row_plan, FactRef(CASES, str(case.id), correction.path.rsplit(".", 1)[1]), correction))
                next_id += 1
        if not pending:
            return plan
        candidate = Overlay((*overlay.corrections, *(c for _, _, c in pending)), (*overlay.sources, source), overlay.revision)
        result = curator.knowledge(candidate)
        outcomes = {o.correction: o for o in result.overlay_outcomes}
        for row_plan, ref, correction in pending:
            outcome = outcomes[correction.id]
            if outcome.status == "applied":
                row_plan.changes.append(PlannedChange(ref, fact_state(knowledge, ref), fact_state(result, ref), correction,
                                                      source))
            elif outcome.status != "in_corpus":
                row_plan.errors.append(f"{ref.field_label}: {outcome.message}")
        if plan.errors:
            for row_plan in plan.rows:
                row_plan.changes = []
        return plan

    def apply(self, plan: ImportPlan, actor: Actor = CLI_ACTOR) -> list[HistoryRow]:
        if not plan.ok:
            raise CurationError("表に誤りがあるため、何も変更していません:\n" + "\n".join(plan.errors))
        if not plan.changes:
            return []
        if plan.source is None or plan.source.as_of is None:
            raise CurationError("取り込むには表の時点（--as-of YYYY-MM-DD）を指定してください")
        batch = f"import-{dt.datetime.now().strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        return self.curator.commit(plan.changes, actor, batch=batch)

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _header(rows: list[TableRow], words: ColumnWords, overrides: dict[str, str]) -> tuple[int | None, dict[int, str]]:
        for index, row in enumerate(rows[: words.header_search_rows]):
            columns = {}
            for position, header in enumerate(row.cells):
                if not header:
                    continue
                target = overrides.get(fold(header)) or words.field_for(header)
                if target and target != IGNORE:
                    columns[position] = target
            if len(columns) >= max(1, words.header_min_columns):
                return index, columns
        return None, {}

    def _source(self, file_name: str, title: str | None, as_of: str | None) -> CuratedSource:
        source_id = file_name + (f"（{as_of}時点）" if as_of else "")
        existing = self.curator.knowledge().sources.get(source_id)
        if isinstance(existing, CuratedSource):
            return existing
        label = mask_personal_data(title)[0] if title else file_name
        return CuratedSource(
            id=source_id, title=label if label == file_name else f"{label}（{file_name}）", as_of=as_of,
            as_of_note=None if as_of else "表の時点が指定されていません", confidence=CONFIRMED if as_of else UNCONFIRMED,
        )

    @staticmethod
    def _corrections(knowledge: Knowledge, case: Case, cells: dict[str, str], words: ColumnWords,
                     source: CuratedSource, as_of: str | None, confidence: str, where: str,
                     first_id: int) -> list[Correction]:
        values: dict[str, Any] = {}
        for name, cell in cells.items():
            if name in ("case", "name"):
                continue
            current = getattr(case, name)
            if isinstance(current, list):
                items = words.split(cell)
                values[name] = list(dict.fromkeys([*current, *items])) if words.merge.get(name) == "add" else items
            else:
                values[name] = " ".join(cell.split())
        # The information fields share one confidence: confirmed only when the table states every one that is not empty.
        information = Case.INFORMATION_FIELDS
        states_all_information = all(n in values or not getattr(case, n) for n in information)
        out = []
        for name, after in values.items():
            ref = FactRef(CASES, str(case.id), name)
            attribute = ref.confidence_field
            if attribute == "confidence" or (name in information and not states_all_information):
                new_confidence = None  # the entry's own confidence covers more than this table states
            else:
                new_confidence = confidence
            before = getattr(case, name)
            stated = getattr(case, attribute)
            if after == before and (new_confidence is None or stated == new_confidence):
                continue
            out.append(Correction(
                id=first_id + len(out), path=ref.path, before=before, after=after, confidence=new_confidence,
                confidence_before=stated, source=source.id, as_of=as_of,
                reason=f"{source.id} の {where}（{shown(cells.get('case_number') or cells.get('name') or case.id)}）から取り込み",
            ))
        return out
