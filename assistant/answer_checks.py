"""Checks of what a reader sees in an answer, and of one answer against the expectations of an evaluation item.

Shared by `assistant eval` (single questions and whole consultations) and the tests.
"""

from __future__ import annotations

import re
from typing import Any

# Internal names that must never reach a reader: corpus files, entry and chunk ids, code names.
INTERNAL_NAME = re.compile(
    r"[A-Za-z0-9_-]+\.(ya?ml|md|jsonl?|py)\b|corpus/|\b(case|qa|notice|check|flow|schedule|guide|statutory|change|doc)-[0-9a-z][0-9a-z-]*\b"
    r"|\b(notification_type|source_id|needs_clarification)\b"
)
STAFF_NOTE = re.compile(r"(説明|案内|回答|伝え|答え|添え|促し)(して|て)(ください|下さい)|確度は?(低|中|高)|を候補とした")
SOURCE_LINE = re.compile(r"^\[(\d+)\]\s*(.+)$", re.M)


def source_lines(answer: str) -> list[str]:
    """The entries of the answer's source list (after the heading 出典)."""
    head, marker, tail = answer.partition("**出典**")
    return [m.group(2).strip() for m in SOURCE_LINE.finditer(tail)] if marker else []


def hygiene(result: dict[str, Any]) -> dict[str, Any]:
    answer = result.get("answer") or ""
    sources = source_lines(answer)
    citations = result.get("citations") or []
    return {
        "internal_names": [m.group(0) for m in INTERNAL_NAME.finditer(answer)],
        "staff_notes": [m.group(0) for m in STAFF_NOTE.finditer(answer)],
        "duplicate_sources": len(sources) != len(set(sources)),
        "citations": len(citations),
        "citations_uncertain": sum(1 for c in citations if c.get("confidence") == "要確認"),
        "chars": len(answer),
    }


def check_expected(result: dict[str, Any], expected: dict[str, Any]) -> dict[str, bool]:
    """One boolean per expectation key present in `expected` (facts and absent: one per pattern)."""
    checks: dict[str, bool] = {}
    answer = result.get("answer") or ""
    if expected.get("cases"):
        cases = result.get("cases") or []
        checks["cases"] = bool(cases) and cases[0] in expected["cases"]
    if "notification_type" in expected:
        checks["notification_type"] = result.get("notification_type") == expected["notification_type"]
    for key in ("needs_clarification", "out_of_scope", "statutory"):
        if key in expected:
            checks[key] = bool(result.get(key)) == bool(expected[key])
    if expected.get("intents"):
        intents = result.get("intents") or (result.get("reading") or {}).get("intents") or []
        checks["intents"] = bool(intents) and intents[0] in expected["intents"]
    for number, pattern in enumerate(expected.get("facts", [])):
        checks[f"facts[{number}]"] = bool(re.search(pattern, answer))
    for number, pattern in enumerate(expected.get("absent", [])):
        checks[f"absent[{number}]"] = not re.search(pattern, answer)
    return checks
