"""Japanese text normalisation (masking of personal data is in assistant.privacy)."""

from __future__ import annotations

import re
import unicodedata

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f々〆ー"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}、。「」（）・])[ \t]+(?=[{_CJK}、。「」（）・])")
_HORIZONTAL_SPACE = re.compile(r"[ \t\u3000\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize(text: str) -> str:
    """NFKC, unify whitespace, drop spaces that PDF extraction puts between Japanese characters."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_HORIZONTAL_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def join_japanese_lines(text: str) -> str:
    """Drop the spaces that folded YAML lines leave between Japanese characters (no other change)."""
    return _SPACE_BETWEEN_CJK.sub("", text)


def normalize_inline(text: str) -> str:
    """Normalised text on one line (for matching and short fields)."""
    return " ".join(normalize(text).split())


# Kept importable from here for code that still imports the masker from this module.
from assistant.privacy import mask_personal_data  # noqa: E402,F401
