"""`assistant batch`: one output line per input line, same order, whatever the lines contain."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import batch
from assistant.batch import MAX_LINE_BYTES, run_batch
from assistant.validation import InputError


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


# -- hostile lines: each gets its own error line and the batch goes on -----------------------------------
def _run(assistant, tmp_path: Path, data: bytes) -> list[dict]:  # noqa: ANN001
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(data)
    summary = run_batch(assistant, source, target)
    out = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert summary["lines"] == len(out)
    return out


def _line(**item: object) -> bytes:
    return json.dumps(item, ensure_ascii=False).encode("utf-8")


GOOD = _line(id="good", mode="classify", text="遺児手当の支給")


def test_a_deeply_nested_line_gets_an_error_line_and_later_lines_are_answered(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    deep = b'{"id": "deep", "mode": "ask", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    out = _run(assistant, tmp_path, b"\n".join([deep, GOOD, b"[" * 50_000]) + b"\n")
    assert [o["id"] for o in out] == ["line-1", "good", "line-3"]
    assert "入れ子が深すぎる" in out[0]["error"] and "入れ子" in out[2]["error"]
    assert out[1]["result"]["candidates"][0]["case"] == 11


def test_a_byte_order_mark_and_crlf_line_ends_are_read_as_text(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    second = GOOD.replace(b"good", "second\u2028line".encode())  # a character some readers take as a line end
    out = _run(assistant, tmp_path, "\ufeff".encode() + GOOD + b"\r\n" + second + b"\r\n")
    assert [o["id"] for o in out] == ["good", "second\u2028line"]
    assert all("result" in o for o in out)


def test_bytes_that_are_not_utf8_give_an_error_for_their_line_only(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    broken = _line(id="broken", mode="ask", text="届出は必要ですか").replace("必要".encode(), b"\x95K\x97v")  # Shift_JIS
    out = _run(assistant, tmp_path, b"\n".join([broken, b"\xff\xfe\x00\x01", GOOD]))  # no final line break
    assert [o["id"] for o in out] == ["line-1", "line-2", "good"]
    assert all("UTF-8" in o["error"] for o in out[:2]) and "result" in out[2]


def test_wrong_types_and_undecodable_escapes_get_error_lines(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    lines = [
        _line(id=["a"], mode="ask", text="届出は必要ですか"),
        _line(id=7, mode="classify", text="遺児手当の支給"),
        _line(id="m", mode={"ask": 1}, text="届出"),
        _line(id="t", mode="ask", text=12),
        json.dumps({"id": "\ud800", "mode": "ask", "text": "届出"}).encode(),  # a lone surrogate, escaped
        json.dumps({"id": "s", "mode": "ask", "text": "届出は必要\udc80ですか"}).encode(),
        b'{"id": "n", "x": ' + b"9" * 5000 + b"}",  # a number too long to convert
        b"{" + b" " * (MAX_LINE_BYTES + 10) + b"}",
        GOOD,
    ]
    out = _run(assistant, tmp_path, b"\n".join(lines) + b"\n")
    assert [o["id"] for o in out] == ["line-1", "7", "m", "t", "line-5", "s", "line-7", "line-8", "good"]
    assert "result" in out[1] and "result" in out[8]
    assert all("error" in o for i, o in enumerate(out) if i not in (1, 8))
    assert out[2]["mode"] is None and "mode" in out[2]["error"]
    assert "大きすぎ" in out[7]["error"]


def test_the_input_file_is_never_overwritten_by_its_output(assistant, tmp_path: Path) -> None:  # noqa: ANN001
    source = tmp_path / "data.jsonl"
    source.write_bytes(GOOD + b"\n")
    (tmp_path / "alias.jsonl").symlink_to(source)
    for output in (source, tmp_path / "alias.jsonl", tmp_path / "." / "data.jsonl"):
        with pytest.raises(InputError, match="同じファイル"):
            run_batch(assistant, source, output)
    assert source.read_bytes() == GOOD + b"\n"


def test_an_interrupted_batch_keeps_the_previous_output(assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"\n".join([GOOD] * 3) + b"\n")
    target.write_text('{"id": "earlier run"}\n', encoding="utf-8")
    real = batch.answer_line

    def interrupted(assistant, raw, line_number):  # noqa: ANN001, ANN202
        if line_number == 2:
            raise KeyboardInterrupt
        return real(assistant, raw, line_number)

    monkeypatch.setattr(batch, "answer_line", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_batch(assistant, source, target)
    assert target.read_text(encoding="utf-8") == '{"id": "earlier run"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


# -- generated input: no crash, one output line per input line, same order -----------------------------
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
CONTROL = st.characters(codec="utf-8", categories=["Cc", "Cf"])
TEXTS = st.one_of(
    st.sampled_from(["遺児手当の支給", "号ずれの修正はどの届出ですか", "👨‍👩‍👧 世帯の助成", "", "   ", "\u3000"]),
    st.text(max_size=120),
    st.text(alphabet=CONTROL, max_size=40),
    st.integers(min_value=3990, max_value=4010).map(lambda n: "あ" * n),
    st.just("届出" * 30_000),
    JSON_VALUES,
)
IDS = st.one_of(st.text(max_size=20), st.integers(), JSON_VALUES)
MODES = st.one_of(st.sampled_from(["ask", "classify", "ASK", " ask", "translate"]), JSON_VALUES)
ITEMS = st.fixed_dictionaries({}, optional={"id": IDS, "mode": MODES, "text": TEXTS, "expected": JSON_VALUES})
ANSWERABLE = st.fixed_dictionaries(  # well-formed lines with arbitrary text, so answering is exercised too
    {"id": st.text(max_size=20), "mode": st.sampled_from(["ask", "classify"]), "text": st.text(min_size=1, max_size=200)},
    optional={"expected": JSON_VALUES},
)


@st.composite
def hostile_lines(draw) -> bytes:  # noqa: ANN001
    """One input line (without its line break) of some hostile kind."""
    kind = draw(st.sampled_from(["answerable"] * 3 + ["item"] * 3 + ["escaped", "nested", "bytes", "cut", "not-utf8", "bom", "scalar"]))
    if kind == "nested":
        depth = draw(st.integers(min_value=1, max_value=200_000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        return opener * depth
    if kind == "bytes":
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    if kind == "scalar":
        return json.dumps(draw(JSON_VALUES)).encode()
    item = draw(ANSWERABLE if kind == "answerable" else ITEMS)
    if kind == "escaped":  # lone surrogates written as \\ud8xx escapes
        item["text"] = draw(st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4))
        return json.dumps(item, ensure_ascii=True).encode()
    line = json.dumps(item, ensure_ascii=draw(st.booleans())).encode("utf-8")
    if kind == "cut":
        return line[: draw(st.integers(min_value=0, max_value=len(line)))]
    if kind == "not-utf8":
        at = draw(st.integers(min_value=0, max_value=len(line)))
        return line[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x95\x4b"])) + line[at:]
    if kind == "bom":
        return "\ufeff".encode() + line
    return line


def _expected_id(line: bytes, number: int) -> str | None:
    """The id a well-formed line must keep; None when the line may get any error id."""
    try:
        item = json.loads(line.decode("utf-8").removeprefix("\ufeff"))
    except (ValueError, RecursionError):
        return f"line-{number}"
    if not isinstance(item, dict):
        return f"line-{number}"
    value = item.get("id")
    if isinstance(value, str) and not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"line-{number}"


def _fuzz(assistant, examples: int, max_lines: int) -> Counter:  # noqa: ANN001
    totals: Counter = Counter()

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(hostile_lines(), min_size=0, max_size=max_lines), st.booleans())
    def check(lines: list[bytes], final_break: bool) -> None:
        data = b"\n".join(lines) + (b"\n" if final_break and lines else b"")
        lines = data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n") if data else []
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
            source.write_bytes(data)
            run_batch(assistant, source, target)  # must not raise
            out = [json.loads(row) for row in target.read_bytes().decode("utf-8").splitlines()]
        assert len(out) == len(lines)
        for number, (line, row) in enumerate(zip(lines, out), start=1):
            assert row["id"] == _expected_id(line, number)
            assert ("result" in row) != ("error" in row)
            assert row["mode"] is None or isinstance(row["mode"], str)
            totals["errors" if "error" in row else "answers"] += 1
        totals["lines"] += len(lines)
        totals["batches"] += 1

    check()
    return totals


def test_generated_hostile_input_never_crashes_the_batch(assistant) -> None:  # noqa: ANN001
    totals = _fuzz(assistant, examples=200, max_lines=4)
    assert totals["batches"] == 200 and totals["answers"] > 0 and totals["errors"] > 0


@pytest.mark.slow
def test_ten_thousand_generated_lines_never_crash_the_batch(assistant) -> None:  # noqa: ANN001
    started = time.perf_counter()
    totals = _fuzz(assistant, examples=2_500, max_lines=9)
    print(f"\nfuzz: {dict(totals)} in {time.perf_counter() - started:.1f} s")
    assert totals["lines"] >= 10_000
