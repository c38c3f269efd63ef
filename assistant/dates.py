"""Dates as people type them: 2026-04-01, 2026/4/1, 2026年4月1日, 令和8年4月1日 (also 令和元年, full-width digits)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from assistant.validation import InputError

# The first day of each era that a date in current documents may be written in.
ERA_STARTS: dict[str, dt.date] = {
    "令和": dt.date(2019, 5, 1),
    "平成": dt.date(1989, 1, 8),
    "昭和": dt.date(1926, 12, 25),
}
_WESTERN = re.compile(r"(?P<y>\d{4})\s*(?:[-/.]|年)\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*日?")
_ERA = re.compile(rf"(?P<era>{'|'.join(ERA_STARTS)})\s*(?P<y>\d{{1,2}}|元)\s*年\s*(?P<m>\d{{1,2}})\s*月\s*(?P<d>\d{{1,2}})\s*日?")
ACCEPTED_FORMS = "2026-04-01、2026/4/1、2026年4月1日、令和8年4月1日"


def parse_date(text: str) -> dt.date:
    """The date written in `text` (nothing else may be written); InputError in Japanese otherwise."""
    value = unicodedata.normalize("NFKC", text or "").strip()
    if not value:
        raise InputError(f"日付が空です（{ACCEPTED_FORMS} のように入力してください）")
    western = _WESTERN.fullmatch(value)
    era = _ERA.fullmatch(value) if western is None else None
    if western is None and era is None:
        raise InputError(f"日付 {text!r} を読み取れません（{ACCEPTED_FORMS} のように入力してください）")
    match = western or era
    assert match is not None
    month, day = int(match["m"]), int(match["d"])
    if western is not None:
        year = int(match["y"])
    else:
        start = ERA_STARTS[match["era"]]
        year = start.year + (1 if match["y"] == "元" else int(match["y"])) - 1
    try:
        date = dt.date(year, month, day)
    except ValueError as exc:
        raise InputError(f"日付 {text!r} は存在しない日です") from exc
    if era is not None and date < ERA_STARTS[match["era"]]:
        raise InputError(f"日付 {text!r} は{match['era']}の始まり（{ERA_STARTS[match['era']].isoformat()}）より前です")
    return date


def iso_date(text: str) -> str:
    """`parse_date` as YYYY-MM-DD."""
    return parse_date(text).isoformat()
