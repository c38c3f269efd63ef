"""Ingest and incremental-update benchmark on a generated collection of official-looking documents.

Writes DOCS Markdown documents of about five chunks each into a folder, ingests the folder with one
`assistant ingest` call (MB of text per second), adds ONE more document to that index (seconds), and
measures `ask` latency over the resulting index (p50 / p95). The embedded default, or the servers when
ASSISTANT_DATABASE_URL / ASSISTANT_CHROMA_URL are set.

Run: .venv/bin/python benchmarks/ingest_scale.py [--docs 10000]   (10,000 documents ≈ 50,000 chunks)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "独自利用事務の情報連携を行う地方公共団体は、個人情報保護委員会に届出を行う。",
    "届出の種類は新規、変更、中止及び届出書の差替えである。",
    "変更の届出は、事例番号又は提供を求める特定個人情報に変更がある場合に行う。",
    "号ずれの修正など軽微な変更は、届出書の差替えとして随時受け付ける。",
    "情報照会者は地方公共団体の長その他の執行機関であり、情報提供者は法定事務と同一又はその一部である。",
    "事前準備として、番号利用条例への追加、予算化、システム改修、特定個人情報保護評価を確認する。",
    "子どもの医療費助成に関する事務において、地方税関係情報を照会することができる。",
    "ひとり親家庭等医療費助成の対象者の所得を確認するため、住民票関係情報の提供を受ける。",
]
QUESTIONS = ["届出の種類は何ですか", "号ずれの修正は何の届出ですか", "医療費助成で地方税関係情報を照会できますか",
             "特定個人情報保護評価は必要ですか", "情報提供者とは誰ですか"]


def write_collection(folder: Path, docs: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    total = 0
    for number in range(docs):
        sections = []
        for section in range(5):
            body = "".join(rng.choice(SENTENCES) for _ in range(9))
            sections.append(f"## 第{section + 1}節 規定{number}-{section}\n{body}\n")
        text = f"# 手引 第{number}号\n" + "\n".join(sections)
        path = folder / f"{number // 1000:02d}" / f"doc{number:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        total += len(text.encode("utf-8"))
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _reuse_model_caches(shared: Path, cache_dir: Path) -> None:
    """Link the word-vector and reader caches of the usual home (they do not depend on the documents)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for item in [*shared.glob("*.npy"), *shared.glob("*.npz")]:
        target = cache_dir / item.name
        if not target.exists():
            target.symlink_to(item)


@contextlib.contextmanager
def _work_folder(keep: Path | None):
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="ingest-scale-") as tmp:
            yield tmp
    else:
        keep.mkdir(parents=True, exist_ok=True)
        yield str(keep)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (home and collection) afterwards")
    args = parser.parse_args()
    from assistant.config import load_settings as settings_now

    shared_cache = settings_now().cache_dir
    with _work_folder(args.keep) as tmp:
        os.environ["ASSISTANT_HOME"] = str(Path(tmp) / "home")
        from assistant.config import apply_offline_environment, load_settings

        apply_offline_environment()
        from assistant.index.store import build_index
        from assistant.ingest.pipeline import IngestOptions, ingest_documents
        from assistant.knowledge import load_knowledge

        settings = load_settings()
        settings.ensure_dirs()
        _reuse_model_caches(shared_cache, settings.cache_dir)
        knowledge = load_knowledge(settings.corpus_dir)
        build_index(settings, knowledge)  # the corpus alone (and the word-vector cache)
        folder = Path(tmp) / "collection"
        size = write_collection(folder, args.docs)
        os.sync()  # the generated files reach the disk before the clock starts (their writeback is not ingest's)
        started = time.perf_counter()
        report = ingest_documents(settings, [folder], IngestOptions(kind="guidance", as_of="2025-04-01"), knowledge=knowledge)
        ingest_seconds = time.perf_counter() - started
        os.sync()  # the ingest leaves hundreds of MB for the kernel to write out: not part of what is timed next
        one = Path(tmp) / "one.md"
        one.write_text("# 追加の手引\n" + "".join(SENTENCES) * 3, encoding="utf-8")
        started = time.perf_counter()
        added = ingest_documents(settings, [one], IngestOptions(kind="guidance", as_of="2025-04-01"), knowledge=knowledge)
        add_seconds = time.perf_counter() - started
        os.sync()  # likewise the new build the update wrote

        from assistant.service import Assistant

        assistant = Assistant(load_settings())
        assistant.warm_up()
        timings = []
        for _round in range(8):
            for question in QUESTIONS:
                t0 = time.perf_counter()
                assistant.ask(question)
                timings.append((time.perf_counter() - t0) * 1000)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from start import app_page, cli_first_answer

        home = Path(os.environ["ASSISTANT_HOME"])
        cli_seconds, cli_mb = cli_first_answer(home)
        page_seconds, app_answer_seconds, app_memory = app_page(home)
        results = {
            "documents": args.docs,
            "text_mb": round(size / 1e6, 2),
            "chunks": report.index.chunks,
            "ingest_seconds": round(ingest_seconds, 1),
            "ingest_mb_per_s": round(size / 1e6 / ingest_seconds, 2),
            "index_timings": {k: round(v, 2) for k, v in report.index.timings.items()},
            "add_one_document_seconds": round(add_seconds, 2),
            "add_one_incremental": added.index.incremental,
            "ask_ms": {"n": len(timings), "p50": round(statistics.median(timings), 1), "p95": round(percentile(timings, 0.95), 1)},
            "max_resident_mb_ingesting_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cli_first_answer_s": cli_seconds,
            "cli_peak_mb": round(cli_mb, 1),
            "app_page_s": round(page_seconds, 2),
            "app_first_answer_s": round(app_answer_seconds, 2),
            "app_worker_peak_mb_after_first_answer": app_memory.get("peak"),
            "app_worker_memory_mb_after_first_answer": app_memory,
            "servers": bool(settings.chroma_url),
        }
    out = ROOT / "benchmarks" / "results" / f"ingest-scale-{args.docs}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
