"""Checks on what users type, and the error types whose messages are shown to them (in Japanese).

- `InputError`: the request itself is unusable (empty, too long, binary, a malformed id).
- `ServiceError`: the request was fine but the assistant cannot carry it out (damaged database,
  full disk); the message says what to do.
"""

from __future__ import annotations

import re
import unicodedata

MAX_SESSION_ID_CHARS = 128
SESSION_ID_ALPHABET = "半角英数字・ハイフン（-）・アンダースコア（_）"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]+")
# Share of characters that must be readable for a question to count as text.
MIN_READABLE_SHARE = 0.9
_KEPT_CONTROLS = frozenset("\t\n\r")


class InputError(ValueError):
    """The question or request itself is unusable; the message is for the user."""


class ServiceError(RuntimeError):
    """The assistant cannot serve a valid request (storage damaged or full); the message is for the user."""


def _is_noise(ch: str) -> bool:
    """Characters that carry no text: control codes, lone surrogates, non-characters, the replacement mark.

    Format characters (zero-width joiner, variation selectors, tag characters) are text: they build
    emoji sequences such as 👨‍👩‍👧 or 🏴󠁧󠁢󠁳󠁣󠁴󠁿, so they are kept.
    """
    if ch in _KEPT_CONTROLS:
        return False
    code = ord(ch)
    if ch == "\ufffd" or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return True
    return unicodedata.category(ch) in ("Cc", "Cs")


def has_surrogates(text: str) -> bool:
    """True for text decoded with surrogateescape from bytes that were not UTF-8 (it cannot be stored)."""
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def clean_text(text: str) -> str:
    """The text without control codes (tab and line breaks kept), lone surrogates and non-characters."""
    return "".join(ch for ch in text if not _is_noise(ch))


def validate_question(text: object, max_chars: int) -> str:
    """The question, stripped and without control codes; InputError when it is not usable text."""
    if not isinstance(text, str):
        raise InputError("質問は文字列で入力してください")
    if "\x00" in text:
        raise InputError("質問にバイナリデータ（NUL 文字）が含まれています。テキストで入力してください")
    if has_surrogates(text):
        raise InputError("質問に文字として読めない部分（UTF-8 ではないバイト列）が含まれています。テキストで入力してください")
    stripped = text.strip()
    if not stripped:
        raise InputError("質問が空です。事務の名称や相談内容を入力してください")
    if len(stripped) > max_chars:
        raise InputError(f"質問が長すぎます（{len(stripped)} 文字、上限 {max_chars} 文字）。要点を絞って入力してください")
    noise = sum(1 for ch in stripped if _is_noise(ch))
    if noise / len(stripped) > 1 - MIN_READABLE_SHARE:
        raise InputError("質問に読み取れない文字が多く含まれています。テキストで入力してください")
    cleaned = clean_text(stripped).strip()
    if not cleaned:
        raise InputError("質問が空です。事務の名称や相談内容を入力してください")
    return cleaned


def validate_session_id(session_id: object) -> str:
    """A session id of a fixed alphabet and bounded length (it also names export files)."""
    if not isinstance(session_id, str) or not session_id.strip():
        raise InputError("セッション ID を指定してください")
    text = session_id.strip()
    if len(text) > MAX_SESSION_ID_CHARS:
        raise InputError(f"セッション ID が長すぎます（上限 {MAX_SESSION_ID_CHARS} 文字）")
    if not _SESSION_ID.fullmatch(text):
        raise InputError(f"セッション ID に使えない文字が含まれています（使える文字: {SESSION_ID_ALPHABET}）")
    return text
