"""`assistant batch`: one output line per input line, same order; a bad line gets an error line.

Lines are read as bytes, so a line that is not UTF-8, carries a byte-order mark, nests too deeply
or is too large is answered with an error line and the batch goes on. The output is written to
a temporary file beside OUT and renamed at the end: OUT is replaced only by a complete result,
and an input file is never overwritten by its own output.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from assistant.files import atomic_output
from assistant.service import Assistant
from assistant.validation import InputError, has_surrogates

MODES = ("classify", "ask")
MAX_LINE_BYTES = 1_000_000
BOM = "\ufeff"
_SHOWN_CHARS = 40  # how much of a bad value an error message repeats


def _error(item_id: str, mode: str | None, message: str) -> dict[str, Any]:
    return {"id": item_id, "mode": mode, "error": message}


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _item_id(item: dict[str, Any], line_number: int) -> tuple[str, str | None]:
    """The output id (input ids are strings; integers are accepted as their decimal text) and a problem, if any."""
    fallback = f"line-{line_number}"
    value = item.get("id")
    if value is None:
        return fallback, None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    if not isinstance(value, str):
        return fallback, f"id は文字列で指定してください（{type(value).__name__} が指定されています）"
    if has_surrogates(value):
        return fallback, "id に文字として読めない部分（不正なサロゲート）が含まれています"
    return value, None


def process_line(assistant: Assistant, raw: str, line_number: int) -> dict[str, Any]:
    fallback = f"line-{line_number}"
    try:
        item = json.loads(raw)
    except RecursionError:
        return _error(fallback, None, "JSON の入れ子が深すぎるため読めません")
    except ValueError as exc:  # JSONDecodeError, and numbers too long to convert
        return _error(fallback, None, f"JSON として読めません: {exc}")
    if not isinstance(item, dict):
        return _error(fallback, None, "各行は JSON オブジェクトである必要があります")
    item_id, id_problem = _item_id(item, line_number)
    mode = item.get("mode")
    shown_mode = mode if isinstance(mode, str) and not has_surrogates(mode) else None
    if id_problem:
        return _error(item_id, shown_mode, id_problem)
    if mode not in MODES:
        given = "指定なし" if mode is None else f"指定: {_shown(mode)!r}"
        return _error(item_id, shown_mode, f"mode は {' / '.join(MODES)} のいずれかです（{given}）")
    started = time.perf_counter()
    try:
        result = assistant.classify(item.get("text")) if mode == "classify" else assistant.ask(item.get("text"))
    except InputError as exc:
        return _error(item_id, mode, str(exc))
    except Exception as exc:  # one failing line must not stop the batch
        return _error(item_id, mode, f"処理に失敗しました: {type(exc).__name__}: {exc}")
    return {"id": item_id, "mode": mode, "result": result, "ms": round((time.perf_counter() - started) * 1000, 3)}


def _decode(raw: bytes, line_number: int) -> str | dict[str, Any]:
    """The line as text, or the error line that answers it."""
    fallback = f"line-{line_number}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(fallback, None, f"UTF-8 として読めないバイトがあります（{exc.start + 1} バイト目）")
    return text.removeprefix(BOM).rstrip("\r\n")


def _lines(source: IO[bytes]) -> Iterator[tuple[bytes | None, int]]:
    """(raw line or None when it was too long, line number); a line ends at LF."""
    line_number = 0
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line_number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield None, line_number
            continue
        yield raw, line_number


def answer_line(assistant: Assistant, raw: bytes | None, line_number: int) -> dict[str, Any]:
    if raw is None:
        return _error(f"line-{line_number}", None, f"行が大きすぎます（上限 {MAX_LINE_BYTES:,} バイト）")
    text = _decode(raw, line_number)
    if isinstance(text, dict):
        return text
    if not text.strip():
        return _error(f"line-{line_number}", None, "空行です")
    return process_line(assistant, text, line_number)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return second.exists() and os.path.samefile(first, second)
    except OSError:
        return False


# Characters that some readers take as line ends (str.splitlines, older JavaScript) go out escaped.
_LINE_BREAKING = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _encoded(out: dict[str, Any]) -> bytes:
    """One output line; it never contains a character that could split it."""
    line = json.dumps(out, ensure_ascii=False).translate(_LINE_BREAKING) + "\n"
    try:
        return line.encode("utf-8")
    except UnicodeEncodeError:  # text that is not Unicode (lone surrogates) goes out escaped
        return (json.dumps(out, ensure_ascii=True) + "\n").encode("ascii")


@contextmanager
def _output(path: Path) -> Iterator[IO[bytes]]:
    """A regular file is replaced at the end; a pipe or terminal (e.g. /dev/stdout) is written as lines come."""
    if path.exists() and not path.is_file():
        with path.open("wb", buffering=0) as stream:
            yield stream
        return
    with atomic_output(path) as handle:
        yield handle


def run_batch(assistant: Assistant, input_path: Path, output_path: Path) -> dict[str, Any]:
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.exists() or input_path.is_dir():
        raise InputError(f"入力ファイル {input_path} が見つかりません")
    if input_path.is_file() and (_same_file(input_path, output_path) or input_path.resolve() == output_path.resolve()):
        raise InputError(f"入力と出力に同じファイル（{input_path}）は指定できません。出力には別のファイル名を指定してください")
    started = time.perf_counter()
    assistant.warm_up()
    load_seconds = time.perf_counter() - started
    counts = {"lines": 0, "errors": 0}
    with input_path.open("rb") as source, _output(output_path) as sink:
        for raw, line_number in _lines(source):
            out = answer_line(assistant, raw, line_number)
            counts["lines"] += 1
            counts["errors"] += "error" in out
            sink.write(_encoded(out))
    return counts | {"load_seconds": round(load_seconds, 2), "total_seconds": round(time.perf_counter() - started, 2)}
