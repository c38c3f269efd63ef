"""String folding for matching what people type against domain terms."""

from __future__ import annotations

import re
import unicodedata

_FOLDS = [
    (re.compile(r"子供|こども|子ども"), "子ども"),
    (re.compile(r"一人親|ひとり親|ひとりおや"), "ひとり親"),
    (re.compile(r"障がい|障碍|しょうがい"), "障害"),
    (re.compile(r"[ヶケヵ]月"), "か月"),
    (re.compile(r"[ヶケ]丘"), "が丘"),
]
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SPACES.sub("", text)
    for pattern, replacement in _FOLDS:
        text = pattern.sub(replacement, text)
    return text


def find_terms(folded_text: str, terms: list[str]) -> list[str]:
    """Terms (given unfolded) present in the folded text."""
    return [t for t in terms if fold(t) and fold(t) in folded_text]
