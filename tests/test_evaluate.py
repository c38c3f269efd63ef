import json
from pathlib import Path

from assistant.evaluate import ranking_metrics, run_evaluation


def test_ranking_metrics() -> None:
    metrics = ranking_metrics(["x", "case-01", "y"], {"case-01"})
    assert metrics["hit@1"] == 0.0 and metrics["hit@3"] == 1.0 and metrics["mrr"] == 0.5
    assert 0 < metrics["ndcg@10"] < 1


def test_report_with_baseline(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    dataset = tmp_path / "mini.jsonl"
    items = [
        {"id": "c1", "mode": "classify", "text": "妊産婦医療費の助成", "expected": {"cases": [34]}},
        {"id": "c2", "mode": "classify", "text": "児童手当", "expected": {"statutory": True}},
        {"id": "q1", "mode": "ask", "text": "事業を廃止します。届出済みです。何の届出？",
         "expected": {"notification_type": "discontinue", "facts": ["中止"]}},
        {"id": "q2", "mode": "ask", "text": "おすすめの映画は？", "expected": {"out_of_scope": True}},
    ]
    dataset.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items), encoding="utf-8")
    report = run_evaluation(assistant, [dataset], out_dir=tmp_path / "reports")
    ours = report["systems"]["hybrid+advisor"]
    assert ours["classify_top1"] == 1.0 and ours["classify_statutory_acc"] == 1.0
    assert ours["ask_notification_acc"] == 1.0 and ours["ask_out_of_scope_acc"] == 1.0
    assert ours["citation_validity"] == 1.0
    assert "langchain-rag" in report["systems"] and "bm25-only" in report["systems"]
    assert "classify_top1" in report["table"]
    html = Path(report["html_path"]).read_text(encoding="utf-8")
    assert "<svg" in html and "評価レポート" in html
    saved = json.loads(Path(report["json_path"]).read_text(encoding="utf-8"))
    assert len(saved["rows"]) == 4


def test_the_baseline_retrieves_passages_with_their_text(assistant) -> None:  # noqa: ANN001
    from assistant.baseline import TOP_K, PlainRag

    baseline = PlainRag(assistant)
    result = baseline.ask("妊産婦医療費の助成で情報連携できますか")
    assert len(result["retrieved_ids"]) == TOP_K
    assert all(c["quote"] == assistant.index.by_id[c["source_id"]].text for c in result["citations"])
    assert baseline.classify("妊産婦医療費の助成")["candidates"], "case passages are among the nearest"
