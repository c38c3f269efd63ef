"""`assistant batch`: one output line per input line, same order; a bad line gets an error line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from assistant.service import Assistant, InputError

MODES = ("classify", "ask")


def process_line(assistant: Assistant, raw: str, line_number: int) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {"id": f"line-{line_number}", "mode": None, "error": f"JSON として読めません: {exc}"}
    if not isinstance(item, dict):
        return {"id": f"line-{line_number}", "mode": None, "error": "各行は JSON オブジェクトである必要があります"}
    item_id = item.get("id", f"line-{line_number}")
    mode = item.get("mode")
    if mode not in MODES:
        return {"id": item_id, "mode": mode, "error": f"mode は {' / '.join(MODES)} のいずれかです（{mode!r}）"}
    started = time.perf_counter()
    try:
        result = assistant.classify(item.get("text")) if mode == "classify" else assistant.ask(item.get("text"))
    except InputError as exc:
        return {"id": item_id, "mode": mode, "error": str(exc)}
    except Exception as exc:  # one failing line must not stop the batch
        return {"id": item_id, "mode": mode, "error": f"処理に失敗しました: {type(exc).__name__}: {exc}"}
    return {"id": item_id, "mode": mode, "result": result, "ms": round((time.perf_counter() - started) * 1000, 3)}


def run_batch(assistant: Assistant, input_path: Path, output_path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    assistant.warm_up()
    load_seconds = time.perf_counter() - started
    counts = {"lines": 0, "errors": 0}
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with input_path.open(encoding="utf-8", errors="replace") as source, output_path.open("w", encoding="utf-8") as sink:
        for line_number, raw in enumerate(source, start=1):
            if raw.strip():
                out = process_line(assistant, raw, line_number)
            else:
                out = {"id": f"line-{line_number}", "mode": None, "error": "空行です"}
            counts["lines"] += 1
            counts["errors"] += "error" in out
            sink.write(json.dumps(out, ensure_ascii=False) + "\n")
            sink.flush()
    return counts | {"load_seconds": round(load_seconds, 2), "total_seconds": round(time.perf_counter() - started, 2)}
