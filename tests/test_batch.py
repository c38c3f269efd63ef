import json
from pathlib import Path

from assistant.batch import run_batch


def test_one_output_line_per_input_line_in_order(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    lines = [
        json.dumps({"id": "a", "mode": "classify", "text": "遺児手当の支給", "expected": {"cases": [11]}}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "b", "mode": "translate", "text": "x"}),
        json.dumps({"id": "c", "mode": "ask", "text": ""}),
        json.dumps({"id": "d", "mode": "ask", "text": "あ" * 50_000}, ensure_ascii=False),
        "",
        json.dumps({"id": "e", "mode": "ask", "text": "号ずれの修正はどの届出ですか"}, ensure_ascii=False),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    summary = run_batch(assistant, source, target)
    out = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(out) == len(lines) and summary["lines"] == len(lines)
    assert [o["id"] for o in out] == ["a", "line-2", "b", "c", "d", "line-6", "e"]
    assert out[0]["result"]["candidates"][0]["case"] == 11 and out[0]["ms"] > 0
    assert all("error" in out[i] for i in (1, 2, 3, 4, 5))
    assert out[6]["result"]["notification_type"] == "replace"
