"""`assistant eval`: metrics on our datasets, a plain LangChain RAG baseline beside ours, reports.

Classify: top-1 / top-3 / MRR (a case answer flagged statutory or no-fit counts as wrong),
statutory and no-fit accuracy. Retrieval: hit@k, MRR, nDCG@10 against the chunks of the
expected case or notification type. Ask: notification, case, statutory and out-of-scope
accuracy, fact recall, citation validity, answers with a valid citation. Latency p50/p95.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.citations import is_valid
from assistant.service import Assistant

RETRIEVAL_K = 10


def load_dataset(paths: list[Path]) -> list[dict[str, Any]]:
    items = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path.name}:{number}: JSON として読めません: {exc}") from exc
                if item.get("mode") not in ("classify", "ask") or "expected" not in item:
                    raise ValueError(f"{path.name}:{number}: mode と expected が必要です")
                items.append(item)
    return items


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def relevant_chunks(expected: dict[str, Any]) -> set[str]:
    ids = {f"case-{c:02d}" for c in expected.get("cases", [])}
    code = expected.get("notification_type")
    if code:
        ids |= {f"notice-{code}", f"notice-{code}-examples"}
    return ids


def ranking_metrics(ranked_ids: list[str], relevant: set[str]) -> dict[str, float]:
    hits = [1 if sid in relevant else 0 for sid in ranked_ids[:RETRIEVAL_K]]
    first = next((i for i, h in enumerate(hits) if h), None)
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), RETRIEVAL_K)))
    return {
        "hit@1": float(first == 0),
        "hit@3": float(first is not None and first < 3),
        "hit@10": float(first is not None),
        "mrr": 1.0 / (first + 1) if first is not None else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


class _Tally:
    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, key: str, value: float | bool) -> None:
        self.values.setdefault(key, []).append(float(value))

    def summary(self) -> dict[str, Any]:
        return {k: _mean(v) for k, v in sorted(self.values.items())} | {f"n_{k}": len(v) for k, v in sorted(self.values.items())}


def score_classify(result: dict[str, Any], expected: dict[str, Any], tally: _Tally) -> None:
    if "statutory" in expected:
        tally.add("classify_statutory_acc", result["statutory"] == expected["statutory"])
    if "no_fit" in expected:
        tally.add("classify_no_fit_acc", result["no_fit"] == expected["no_fit"])
    if expected.get("cases"):
        wanted = set(expected["cases"])
        ranked = [] if (result["statutory"] or result["no_fit"]) else [c["case"] for c in result["candidates"]]
        rank = next((i for i, c in enumerate(ranked) if c in wanted), None)
        tally.add("classify_top1", rank == 0)
        tally.add("classify_top3", rank is not None and rank < 3)
        tally.add("classify_mrr", 1.0 / (rank + 1) if rank is not None else 0.0)


def score_ask(result: dict[str, Any], expected: dict[str, Any], tally: _Tally, chunks_by_id: dict) -> None:
    if "notification_type" in expected:
        tally.add("ask_notification_acc", result["notification_type"] == expected["notification_type"])
    if expected.get("cases"):
        tally.add("ask_case_acc", bool(set(result["cases"]) & set(expected["cases"])))
    for pattern in expected.get("facts", []):
        tally.add("ask_fact_recall", bool(re.search(pattern, result["answer"])))
    if "statutory" in expected:
        tally.add("ask_statutory_acc", result["statutory"] == expected["statutory"])
    if "out_of_scope" in expected:
        tally.add("ask_out_of_scope_acc", result["out_of_scope"] == expected["out_of_scope"])
    valid = [is_valid(c, chunks_by_id) for c in result["citations"]]
    for v in valid:
        tally.add("citation_validity", v)
    if not result["out_of_scope"]:
        tally.add("answers_with_valid_citation", any(valid))


def _add_ranking(tally: _Tally, ranked_ids: list[str], relevant: set[str]) -> None:
    for key, value in ranking_metrics(ranked_ids, relevant).items():
        tally.add(f"retrieval_{key}", value)


def _run_items(
    items: list[dict[str, Any]],
    classify: Callable[[str], dict[str, Any]],
    ask: Callable[[str], dict[str, Any]],
    retrieved_ids: Callable[[str, dict[str, Any]], list[str]],
    chunks_by_id: dict,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Answer every item, score it, and time the answers (retrieval scoring is not timed)."""
    tally, latencies, rows = _Tally(), {"classify": [], "ask": []}, []
    for item in items:
        started = time.perf_counter()
        result = classify(item["text"]) if item["mode"] == "classify" else ask(item["text"])
        latencies[item["mode"]].append((time.perf_counter() - started) * 1000)
        if item["mode"] == "classify":
            score_classify(result, item["expected"], tally)
        else:
            score_ask(result, item["expected"], tally, chunks_by_id)
        relevant = relevant_chunks(item["expected"])
        if relevant:
            _add_ranking(tally, retrieved_ids(item["text"], result), relevant)
        rows.append({"id": item["id"], "mode": item["mode"], "text": item["text"], "expected": item["expected"], "result": result})
    metrics = tally.summary()
    for mode, values in latencies.items():
        metrics[f"{mode}_latency_ms_p50"] = round(percentile(values, 0.5), 2)
        metrics[f"{mode}_latency_ms_p95"] = round(percentile(values, 0.95), 2)
    return metrics, rows


def evaluate_system(assistant: Assistant, items: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def retrieved(text: str, _result: dict[str, Any]) -> list[str]:
        return [h.chunk.source_id for h in assistant.retriever.search(text, k=RETRIEVAL_K)]

    return _run_items(items, assistant.classify, assistant.ask, retrieved, assistant.index.by_id)


def evaluate_retriever_only(assistant: Assistant, items: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    tally = _Tally()
    for item in items:
        relevant = relevant_chunks(item["expected"])
        if relevant:
            hits = assistant.retriever.search(item["text"], k=RETRIEVAL_K, mode=mode)
            _add_ranking(tally, [h.chunk.source_id for h in hits], relevant)
    return tally.summary()


def evaluate_baseline(assistant: Assistant, items: list[dict[str, Any]]) -> dict[str, Any]:
    from assistant.baseline import PlainRag

    baseline = PlainRag(assistant)
    metrics, _rows = _run_items(
        items, baseline.classify, baseline.ask, lambda _text, result: result["retrieved_ids"], assistant.index.by_id
    )
    return metrics


TABLE_KEYS = [
    "classify_top1", "classify_top3", "classify_mrr", "classify_statutory_acc", "classify_no_fit_acc",
    "retrieval_hit@1", "retrieval_hit@3", "retrieval_hit@10", "retrieval_mrr", "retrieval_ndcg@10",
    "ask_notification_acc", "ask_case_acc", "ask_fact_recall", "ask_statutory_acc", "ask_out_of_scope_acc",
    "citation_validity", "answers_with_valid_citation",
    "classify_latency_ms_p50", "classify_latency_ms_p95", "ask_latency_ms_p50", "ask_latency_ms_p95",
]


def format_table(systems: dict[str, dict[str, Any]]) -> str:
    names = list(systems)
    header = f"{'metric':32}" + "".join(f"{n:>16}" for n in names)
    lines = [header, "-" * len(header)]
    for key in TABLE_KEYS:
        cells = []
        for name in names:
            value = systems[name].get(key)
            cells.append(f"{'-' if value is None else value:>16}")
        lines.append(f"{key:32}" + "".join(cells))
    return "\n".join(lines)


def render_html(systems: dict[str, dict[str, Any]], meta: dict[str, Any], failures: list[dict[str, Any]]) -> str:
    colors = ["#1f6feb", "#9a6700", "#57606a", "#8250df"]
    rate_keys = [k for k in TABLE_KEYS if "latency" not in k]
    bar_h, gap, width = 14, 6, 360
    rows_svg = []
    y = 20
    for key in rate_keys:
        rows_svg.append(f'<text x="0" y="{y + 10}" font-size="11">{html.escape(key)}</text>')
        for i, name in enumerate(systems):
            value = systems[name].get(key)
            if value is None:
                continue
            w = max(1, int(width * float(value)))
            rows_svg.append(f'<rect x="230" y="{y + i * bar_h}" width="{w}" height="{bar_h - 2}" fill="{colors[i % 4]}"/>')
            rows_svg.append(f'<text x="{235 + w}" y="{y + i * bar_h + 10}" font-size="10">{value:.3f}</text>')
        y += bar_h * len(systems) + gap
    legend = "".join(
        f'<span style="color:{colors[i % 4]}">■ {html.escape(n)}</span> ' for i, n in enumerate(systems)
    )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="680" height="{y + 10}">{"".join(rows_svg)}</svg>'
    table = "<table border=1 cellpadding=4><tr><th>metric</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in systems) + "</tr>"
    for key in TABLE_KEYS:
        table += f"<tr><td>{key}</td>" + "".join(f"<td>{systems[n].get(key, '-')}</td>" for n in systems) + "</tr>"
    table += "</table>"
    fail_rows = "".join(
        f"<tr><td>{html.escape(f['id'])}</td><td>{html.escape(f['text'][:120])}</td><td>{html.escape(json.dumps(f['expected'], ensure_ascii=False))}</td><td>{html.escape(f['got'])}</td></tr>"
        for f in failures[:200]
    )
    return f"""<!doctype html><html lang="ja"><meta charset="utf-8"><title>評価レポート</title>
<body style="font-family:sans-serif"><h1>評価レポート</h1><p>{html.escape(json.dumps(meta, ensure_ascii=False))}</p>
<h2>指標</h2>{table}<h2>グラフ</h2><p>{legend}</p>{svg}
<h2>誤り（先頭200件）</h2><table border=1 cellpadding=3><tr><th>id</th><th>text</th><th>expected</th><th>got</th></tr>{fail_rows}</table></body></html>"""


def collect_failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failures = []
    for row in rows:
        expected, result = row["expected"], row["result"]
        if row["mode"] == "classify":
            top = None if not result["candidates"] else result["candidates"][0]["case"]
            got = f"top={top} statutory={result['statutory']} no_fit={result['no_fit']}"
            ok = True
            if expected.get("cases"):
                ok = top in expected["cases"] and not result["statutory"] and not result["no_fit"]
            if "statutory" in expected:
                ok = ok and result["statutory"] == expected["statutory"]
            if "no_fit" in expected:
                ok = ok and result["no_fit"] == expected["no_fit"]
        else:
            got = f"type={result['notification_type']} cases={result['cases']} statutory={result['statutory']} oos={result['out_of_scope']}"
            ok = all(
                [
                    "notification_type" not in expected or result["notification_type"] == expected["notification_type"],
                    not expected.get("cases") or bool(set(result["cases"]) & set(expected["cases"])),
                    all(re.search(p, result["answer"]) for p in expected.get("facts", [])),
                    "statutory" not in expected or result["statutory"] == expected["statutory"],
                    "out_of_scope" not in expected or result["out_of_scope"] == expected["out_of_scope"],
                ]
            )
        if not ok:
            failures.append({"id": row["id"], "text": row["text"], "expected": expected, "got": got})
    return failures


def run_evaluation(assistant: Assistant, datasets: list[Path], out_dir: Path | None = None, baseline: bool = True) -> dict[str, Any]:
    from assistant.consult_eval import evaluate_consultations, is_consultation_file, load_consultations

    consultation_files = [p for p in datasets if is_consultation_file(p)]
    datasets = [p for p in datasets if p not in consultation_files]
    consultation_metrics: dict[str, Any] = {}
    consultation_rows: list[dict[str, Any]] = []
    if consultation_files:
        from assistant.dialogue.chat import ChatService

        consultation_metrics, consultation_rows = evaluate_consultations(
            ChatService(assistant).turn, load_consultations(consultation_files))
    if not datasets:
        return _consultation_report(assistant, consultation_files, consultation_metrics, consultation_rows, out_dir)
    items = load_dataset(datasets)
    started = time.perf_counter()
    assistant.warm_up()
    warm_seconds = time.perf_counter() - started
    ours, rows = evaluate_system(assistant, items)
    ours |= {f"consult_{k}": v for k, v in consultation_metrics.items()}
    systems: dict[str, dict[str, Any]] = {"hybrid+advisor": ours}
    systems["bm25-only"] = evaluate_retriever_only(assistant, items, "bm25")
    systems["dense-only"] = evaluate_retriever_only(assistant, items, "dense")
    if baseline:
        systems["langchain-rag"] = evaluate_baseline(assistant, items)
    failures = collect_failures(rows)
    out_dir = out_dir or assistant.settings.home / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    meta = {
        "datasets": [str(p) for p in datasets],
        "items": len(items),
        "created": stamp,
        "warm_up_seconds": round(warm_seconds, 2),
        "embedding_model": assistant.index.manifest.get("embedding_model"),
        "weights": {"bm25": assistant.settings.bm25_weight, "dense": assistant.settings.dense_weight},
    }
    json_path = out_dir / f"eval-{stamp}.json"
    html_path = out_dir / f"eval-{stamp}.html"
    json_path.write_text(
        json.dumps({"meta": meta, "systems": systems, "failures": failures, "rows": rows,
                    "consultation_rows": consultation_rows}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    html_path.write_text(render_html(systems, meta, failures), encoding="utf-8")
    table = format_table(systems)
    if consultation_metrics:
        table += "\n\n" + format_metrics(consultation_metrics)
    return {"table": table, "json_path": str(json_path), "html_path": str(html_path), "systems": systems, "failures": failures}


def format_metrics(metrics: dict[str, Any]) -> str:
    return "\n".join(f"{key:44}{value!s:>12}" for key, value in metrics.items())


def _consultation_report(assistant: Assistant, files: list[Path], metrics: dict[str, Any], rows: list[dict[str, Any]],
                         out_dir: Path | None) -> dict[str, Any]:
    out_dir = out_dir or assistant.settings.home / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = out_dir / f"eval-consult-{stamp}.json"
    meta = {"datasets": [str(p) for p in files], "created": stamp}
    json_path.write_text(json.dumps({"meta": meta, "metrics": metrics, "rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
    html_path = out_dir / f"eval-consult-{stamp}.html"
    failures = [{"id": r["id"], "text": r["text"], "expected": r["expected"],
                 "got": json.dumps({k: v for k, v in r["checks"].items() if not v}, ensure_ascii=False)}
                for r in rows if not all(r["checks"].values())]
    html_path.write_text(render_html({"consultations": metrics}, meta, failures), encoding="utf-8")
    return {"table": format_metrics(metrics), "json_path": str(json_path), "html_path": str(html_path),
            "systems": {"consultations": metrics}, "failures": failures}
