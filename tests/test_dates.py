"""Dates as people type them."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.dates import iso_date, parse_date
from assistant.validation import InputError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-04-01", dt.date(2026, 4, 1)),
        ("2026/4/1", dt.date(2026, 4, 1)),
        ("２０２６／０４／０１", dt.date(2026, 4, 1)),
        ("2026年4月1日", dt.date(2026, 4, 1)),
        ("令和8年4月1日", dt.date(2026, 4, 1)),
        ("令和８年４月１日", dt.date(2026, 4, 1)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("平成31年4月30日", dt.date(2019, 4, 30)),
        ("平成28年1月1日", dt.date(2016, 1, 1)),
        (" 2024.5.27 ", dt.date(2024, 5, 27)),
    ],
)
def test_accepted_forms(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected
    assert iso_date(text) == expected.isoformat()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "空"),
        ("令和7年", "読み取れません"),
        ("2026-02-30", "存在しない日"),
        ("令和元年4月30日", "令和の始まり"),
        ("2026-04-01 ごろ", "読み取れません"),
        ("昨日", "読み取れません"),
    ],
)
def test_refused_in_japanese(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_date(text)
