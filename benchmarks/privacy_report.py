"""What the masker of personal data masks in our own texts (a report, not a test).

Runs `assistant.privacy.find_personal_data` over every corpus file and prompt, over the questions of the
evaluation sets, and over the answers the assistant gives to eval/ask.jsonl, and prints each finding with
its context. The corpus, the prompts and the answers should give none; eval questions that contain
personal data on purpose give exactly those values.

Run: .venv/bin/python benchmarks/privacy_report.py [--no-answers] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import apply_offline_environment, load_settings  # noqa: E402
from assistant.privacy import find_personal_data  # noqa: E402

apply_offline_environment()


def _findings(text: str) -> list[dict[str, str]]:
    folded = unicodedata.normalize("NFKC", text)
    return [
        {"kind": f.kind, "text": f.text, "context": folded[max(0, f.start - 20) : f.end + 10].replace("\n", "⏎")}
        for f in find_personal_data(text)
    ]


def corpus_report() -> dict[str, list[dict[str, str]]]:
    files = sorted([*ROOT.glob("corpus/**/*.yaml"), *ROOT.glob("corpus/**/*.md"), *ROOT.glob("prompts/*.md")])
    return {str(p.relative_to(ROOT)): _findings(p.read_text(encoding="utf-8")) for p in files}


def eval_items() -> list[tuple[str, dict]]:
    items = []
    for path in sorted(ROOT.glob("eval/**/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                items.append((str(path.relative_to(ROOT)), json.loads(line)))
    return items


def answers_report() -> dict[str, list[dict[str, str]]]:
    from assistant.service import Assistant

    with tempfile.TemporaryDirectory() as home:
        assistant = Assistant(load_settings(home=Path(home)))
        report = {}
        for path, item in eval_items():
            if path == "eval/ask.jsonl":
                report[item["id"]] = _findings(assistant.ask(item["text"])["answer"])
        return report


def timing_report() -> dict[str, float]:
    """Milliseconds to mask ordinary and adversarial 4,000-character inputs (the longest question)."""
    from assistant.privacy import mask_personal_data

    guidance = "".join(p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("corpus/guidance/*.md")))
    inputs = {
        "guidance text": guidance[:4000],
        "digits and spaces": "1 " * 2000,
        "digits and dashes": "0-" * 2000,
        "labels and spaces": "担当 " * 1000,
        "one kanji run": "山" * 4000,
        "honorifics": "山田さん" * 1000,
        "department lines": "福祉課\n山田\n" * 500,
        "dense findings": "担当:山田 03-1234-5678 " * 160,
    }
    mask_personal_data("")
    timings = {}
    for name, text in inputs.items():
        started = time.perf_counter()
        mask_personal_data(text)
        timings[name] = round((time.perf_counter() - started) * 1000, 1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-answers", action="store_true", help="skip asking the assistant (no index build)")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args()
    corpus = corpus_report()
    questions = {f"{path}:{item['id']}": _findings(item.get("text") or "") for path, item in eval_items()}
    answers = {} if args.no_answers else answers_report()
    timings = timing_report()
    print("## masking time for 4,000 characters (ms): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    sections = {"corpus and prompts": corpus, "evaluation questions": questions, "answers to eval/ask.jsonl": answers}
    for title, findings in sections.items():
        hits = {key: value for key, value in findings.items() if value}
        print(f"## {title}: {len(findings)} texts, {sum(len(v) for v in hits.values())} findings in {len(hits)} texts")
        for key, values in hits.items():
            for finding in values:
                print(f"  {key}: {finding['kind']}: {finding['text']!r}  …{finding['context']}…")
    if args.json:
        report = sections | {"timing_ms": timings}
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
