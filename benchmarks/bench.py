"""Benchmarks (not timed tests): ingest time and index size for the corpus and for a generated
300-page Japanese PDF; classify/ask latency; process start to first answer; resident memory.

Run: .venv/bin/python benchmarks/bench.py [--pages 300]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import apply_offline_environment, load_settings  # noqa: E402

apply_offline_environment()

SENTENCES = [
    "独自利用事務の情報連携を行う地方公共団体は、個人情報保護委員会に届出を行う。",
    "届出の種類は新規、変更、中止及び届出書の差替えである。",
    "変更の届出は、事例番号又は提供を求める特定個人情報に変更がある場合に行う。",
    "号ずれの修正など軽微な変更は、届出書の差替えとして随時受け付ける。",
    "情報照会者は地方公共団体の長その他の執行機関であり、情報提供者は法定事務と同一又はその一部である。",
    "事前準備として、番号利用条例への追加、予算化、システム改修、特定個人情報保護評価を確認する。",
]


def make_long_pdf(path: Path, pages: int) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    pdf = canvas.Canvas(str(path))
    for number in range(1, pages + 1):
        pdf.setFont("HeiseiKakuGo-W5", 9)
        y = 800
        pdf.drawString(40, y, f"第{number}節 手引の記載（{number}ページ）")
        for line in range(40):
            y -= 18
            pdf.drawString(40, y, SENTENCES[(number + line) % len(SENTENCES)])
        pdf.showPage()
    pdf.save()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["ASSISTANT_HOME"] = str(home)
        from assistant.index.store import build_index
        from assistant.ingest.docstore import DocumentStore
        from assistant.knowledge import load_knowledge

        settings = load_settings()
        settings.ensure_dirs()
        knowledge = load_knowledge(settings.corpus_dir)
        build_index(settings, knowledge)  # first build also extracts the word-vector cache
        report = build_index(settings, knowledge)
        results["corpus_index"] = {"chunks": report.chunks, "seconds": round(report.seconds, 2),
                                   "size_mb": round(report.size_bytes / 1e6, 2), **{k: round(v, 2) for k, v in report.timings.items()}}

        # /usr/bin/time reports the child's own peak memory (ru_maxrss of a forked child starts at the parent's).
        started = time.perf_counter()
        completed = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "assistant.cli", "ask", "号ずれの修正だけの場合は何の届出ですか"],
                                   env=os.environ | {"ASSISTANT_HOME": str(home)}, check=True, capture_output=True, text=True)
        results["process_start_to_first_answer_seconds"] = round(time.perf_counter() - started, 2)
        results["cli_max_resident_mb"] = round(int(completed.stderr.strip().splitlines()[-1]) / 1024, 1)

        pdf = Path(tmp) / "long.pdf"
        make_long_pdf(pdf, args.pages)
        started = time.perf_counter()
        ingest = DocumentStore(settings.documents_dir).ingest(pdf, kind="guidance", as_of="2025-04-01", chunk_chars=settings.chunk_chars)
        extract_seconds = time.perf_counter() - started
        report = build_index(settings, knowledge)
        results["pdf"] = {"pages": args.pages, "file_mb": round(pdf.stat().st_size / 1e6, 2), "chunks": ingest.chunks,
                          "extract_chunk_seconds": round(extract_seconds, 2), "index_seconds": round(report.seconds, 2),
                          "index_chunks": report.chunks, "index_size_mb": round(report.size_bytes / 1e6, 2)}

        from assistant.service import Assistant

        assistant = Assistant(load_settings())
        assistant.warm_up()
        items = [json.loads(line) for path in ("eval/classify.jsonl", "eval/ask.jsonl") for line in (ROOT / path).read_text(encoding="utf-8").splitlines() if line.strip()]
        timings: dict[str, list[float]] = {"classify": [], "ask": []}
        for item in items:
            started = time.perf_counter()
            (assistant.classify if item["mode"] == "classify" else assistant.ask)(item["text"])
            timings[item["mode"]].append((time.perf_counter() - started) * 1000)
        from assistant.dialogue.chat import ChatService

        chat = ChatService(assistant)
        timings["chat_turn"] = []
        consultations = [json.loads(line) for line in (ROOT / "eval/consult/consultations.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        for consultation in consultations:  # timing only: whole consultations, each turn with the stored state
            for turn in consultation["turns"]:
                started = time.perf_counter()
                chat.turn(f"bench-{consultation['id']}", turn["text"])
                timings["chat_turn"].append((time.perf_counter() - started) * 1000)
        for mode, values in timings.items():
            results[f"{mode}_ms"] = {"n": len(values), "p50": round(statistics.median(values), 2), "p95": round(percentile(values, 0.95), 2)}
        # Includes the one-off extraction of the word-vector cache from ja-ginza (spaCy) done above.
        results["benchmark_process_max_resident_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
