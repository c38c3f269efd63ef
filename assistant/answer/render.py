"""Renderings of the answer object (Markdown for the CLI and chat, plain text for letters, a fact list for an
LLM prompt) and of a classification. Nothing parses a rendering back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.answer.model import Answer, Statement

UNCERTAIN_MARK = "【要確認】"


@dataclass(frozen=True)
class SourceEntry:
    """One entry of an answer's source list: a public source and section, listed once, with its citations."""

    number: int
    label: str
    as_of: str
    uncertain: bool  # every fact cited from it is unconfirmed
    citations: tuple[int, ...]
    partly_uncertain: bool = False  # at least one fact cited from it is unconfirmed

    def text(self) -> str:
        mark = "、要確認" if self.uncertain else ""
        return f"{self.label}（{self.as_of}時点{mark}）"


def source_entries(answer: Answer) -> list[SourceEntry]:
    """Citations grouped by how a person cites them, numbered in the order the reader meets them."""
    groups: dict[str, list[int]] = {}
    for index in answer.used_citations():
        citation = answer.citations[index]
        groups.setdefault(citation.label or f"{citation.title}（{citation.locator}）", []).append(index)
    entries = []
    for number, (label, indexes) in enumerate(groups.items(), start=1):
        dates = sorted({answer.citations[i].as_of for i in indexes})
        flags = [answer.citations[i].confidence == "要確認" for i in indexes]
        entries.append(SourceEntry(number, label, dates[-1], all(flags), tuple(indexes), any(flags)))
    return entries


def citation_numbers(answer: Answer) -> dict[int, int]:
    """Citation index → the number of its source-list entry: the one place where citation numbers are assigned."""
    return {index: entry.number for entry in source_entries(answer) for index in entry.citations}


def _statement(statement: Statement, numbers: dict[int, int]) -> str:
    refs = sorted({numbers[r] for r in statement.refs if r in numbers})
    marks = "".join(f"[{n}]" for n in refs)
    prefix = UNCERTAIN_MARK if statement.uncertain else ""
    return f"{prefix}{statement.text}" + (f" {marks}" if marks else "")


def to_markdown(answer: Answer) -> str:
    numbers = citation_numbers(answer)
    parts: list[str] = []
    if answer.draft:
        parts += [answer.draft, ""]
    parts += [_statement(s, numbers) for s in answer.conclusion]
    if answer.clarifying_question:
        parts += ["", f"**確認させてください:** {answer.clarifying_question}"]
    if answer.reasons:
        parts += ["", "**理由・根拠**", *[f"- {_statement(s, numbers)}" for s in answer.reasons]]
    if answer.confirm:
        parts += ["", "**確認が必要な点**", *[f"- {_statement(s, numbers)}" for s in answer.confirm]]
    if answer.related:
        parts += ["", "**関連資料**", *[f"> {UNCERTAIN_MARK if e.uncertain else ''}{e.text} [{numbers[e.citation]}]"
                                       for e in answer.related if e.citation in numbers]]
    entries = source_entries(answer)
    if entries:
        parts += ["", "**出典**", *[f"[{e.number}] {e.text()}" for e in entries]]
    return "\n".join(parts).strip()


def to_plain(answer: Answer, *, with_sources: bool = True) -> str:
    """Text for a letter or a reply draft: no Markdown, sources named as a letter cites them."""
    numbers = citation_numbers(answer)
    lines = [_statement(s, numbers) for s in [*answer.conclusion, *answer.reasons]]
    lines += [_statement(s, numbers) for s in answer.confirm]
    if answer.clarifying_question:
        lines.append(answer.clarifying_question)
    text = "\n".join(lines)
    if with_sources:
        entries = source_entries(answer)
        if entries:
            text += "\n\n（出典）\n" + "\n".join(f"[{e.number}] {e.text()}" for e in entries)
    return text


def facts_for_prompt(answer: Answer) -> str:
    """The answer's statements as numbered facts for an LLM to phrase (it may use nothing else)."""
    numbers = citation_numbers(answer)
    lines = [f"- {_statement(s, numbers)}" for s in answer.statements()]
    if answer.clarifying_question:
        lines.append(f"- （利用者への質問）{answer.clarifying_question}")
    return "\n".join(lines)


def citations_for_output(answer: Answer) -> list[dict[str, Any]]:
    """The machine interface's citation list: contract keys plus the reader-facing label and list number."""
    numbers = citation_numbers(answer)
    return [answer.citations[i].to_dict() | {"number": numbers[i]} for i in answer.used_citations()]


def render_classification(result: dict[str, Any]) -> str:
    lines = []
    if result.get("statutory"):
        lines.append("**法定事務と判断しました。** 独自利用事務の届出は不要です。")
        for affair in result.get("statutory_affairs", []):
            lines.append(f"- {affair['name']}: {affair['linkage_basis']}（{affair['confidence']}）")
    if result.get("no_fit"):
        lines.append("**公表されている事例には当てはまらない可能性があります。**")
    if result.get("clarifying_question"):
        lines.append(f"**確認させてください:** {result['clarifying_question']}")
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    for rank, candidate in enumerate(result.get("candidates", []), start=1):
        lines.append(f"{rank}. 事例({candidate['case']}) {candidate['name']}（スコア {candidate['score']:.2f}、{candidate['confidence']}）")
        for reason in candidate["reasons"]:
            lines.append(f"   - {reason}")
    return "\n".join(lines).strip()
