"""Markdown rendering of results for people (CLI, chat, app)."""

from __future__ import annotations

from typing import Any


def citation_label(citation: dict[str, Any]) -> str:
    mark = "【要確認】" if citation["confidence"] == "要確認" else ""
    return f"{citation['title']}（{citation['locator']}、{citation['as_of']}時点、{citation['confidence']}）{mark}"


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
