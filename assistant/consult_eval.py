"""Evaluation of whole consultations (eval/*/consultations.jsonl) and of what readers see in answers.

A turn is right when every expectation of the turn holds; a consultation is right when all its turns are.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.answer_checks import check_expected, hygiene

Turn = Callable[[str, str], dict[str, Any]]


def load_consultations(paths: list[Path]) -> list[dict[str, Any]]:
    items = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item.get("turns"), list) or not item["turns"]:
                raise ValueError(f"{path.name}:{number}: turns が必要です")
            items.append(item)
    return items


def is_consultation_file(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "")
    return bool(first) and "turns" in json.loads(first)


def reader_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a reader sees, over answered turns: internal names, staff notes, duplicate sources, length, 要確認."""
    seen = [hygiene(r["result"]) for r in rows if "result" in r]
    if not seen:
        return {}
    citations = sum(h["citations"] for h in seen)
    return {
        "answers": len(seen),
        "answers_with_internal_names": sum(1 for h in seen if h["internal_names"]),
        "answers_with_staff_notes": sum(1 for h in seen if h["staff_notes"]),
        "answers_with_duplicate_sources": sum(1 for h in seen if h["duplicate_sources"]),
        "citations_uncertain_share": round(sum(h["citations_uncertain"] for h in seen) / citations, 4) if citations else None,
        "answer_chars_median": statistics.median(h["chars"] for h in seen),
    }


def evaluate_consultations(turn: Turn, consultations: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows, right_turns, right_consultations, latencies = [], 0, 0, []
    right_without_intents = 0
    per_key: dict[str, list[bool]] = {}
    decided: list[bool] = []  # notification type where the facts decide it
    clarify: list[bool] = []  # a clarifying question where they do not
    total_turns = 0
    for consultation in consultations:
        session = f"eval-{consultation['id']}-{uuid.uuid4().hex[:6]}"
        all_right = True
        for number, step in enumerate(consultation["turns"], start=1):
            expected = step.get("expected", {})
            started = time.perf_counter()
            try:
                result = turn(session, step["text"])
                error = None
            except Exception as exc:  # a failing turn is scored as wrong, the evaluation goes on
                result, error = {}, f"{type(exc).__name__}: {exc}"
            latencies.append((time.perf_counter() - started) * 1000)
            checks = check_expected(result, expected) if error is None else {"error": False}
            for key, ok in checks.items():
                per_key.setdefault(key.split("[")[0], []).append(ok)
            if expected.get("notification_type"):
                decided.append(checks.get("notification_type", False))
            if "notification_type" in expected and expected["notification_type"] is None and expected.get("needs_clarification"):
                clarify.append(checks.get("notification_type", False) and checks.get("needs_clarification", False))
            ok = all(checks.values())
            right_turns += ok
            right_without_intents += all(v for k, v in checks.items() if k != "intents")
            total_turns += 1
            all_right = all_right and ok
            row = {"id": f"{consultation['id']}#{number}", "text": step["text"], "expected": expected, "checks": checks}
            if error is None:
                row["result"] = result
            else:
                row["error"] = error
            rows.append(row)
        right_consultations += all_right
    metrics = {
        "consultations": len(consultations),
        "turns": total_turns,
        "turns_right": round(right_turns / total_turns, 4) if total_turns else None,
        "turns_right_excluding_intents": round(right_without_intents / total_turns, 4) if total_turns else None,
        "consultations_right": round(right_consultations / len(consultations), 4) if consultations else None,
        "notification_decided_acc": round(sum(decided) / len(decided), 4) if decided else None,
        "n_notification_decided": len(decided),
        "clarification_when_undecided_acc": round(sum(clarify) / len(clarify), 4) if clarify else None,
        "n_clarification_when_undecided": len(clarify),
        **{f"turn_{key}_acc": round(sum(v) / len(v), 4) for key, v in sorted(per_key.items())},
        "turn_latency_ms_p50": round(statistics.median(latencies), 2) if latencies else None,
        "turn_latency_ms_p95": round(sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)], 2) if latencies else None,
    } | reader_metrics(rows)
    return metrics, rows
