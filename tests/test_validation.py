"""What users type: questions (emoji sequences are text, binary is not) and session ids (a fixed alphabet)."""

from __future__ import annotations

import pytest

from assistant.validation import InputError, clean_text, validate_question, validate_session_id

LIMIT = 4000
EMOJI_QUESTIONS = [
    "👨‍👩‍👧",  # family: three emoji joined by zero-width joiners
    "👨‍👩‍👧‍👦 世帯向けの助成で情報連携したい",
    "🏳️‍🌈",
    "🇯🇵🇯🇵",  # flags: regional indicator pairs
    "👍🏽👋🏿",  # skin tone modifiers
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # a subdivision flag built from tag characters
    "届出は必要ですか❤️",  # variation selector
    "情報\u200c連携\u200dの届出",  # zero-width non-joiner and joiner inside Japanese text
]


@pytest.mark.parametrize("text", EMOJI_QUESTIONS)
def test_emoji_sequences_and_format_characters_are_text(text: str) -> None:
    assert validate_question(text, LIMIT) == text.strip()


def test_binary_control_codes_and_undecodable_bytes_are_refused() -> None:
    with pytest.raises(InputError, match="NUL"):
        validate_question("届出\x00は必要ですか", LIMIT)
    with pytest.raises(InputError, match="読み取れない"):
        validate_question("\x01\x02\x03\x04\x05届出", LIMIT)
    with pytest.raises(InputError, match="読み取れない"):
        validate_question("\ufffd" * 5 + "届出", LIMIT)
    undecodable = b"\xff\xfe\x93\xcd\x8f\x6f".decode("utf-8", "surrogateescape")
    with pytest.raises(InputError, match="UTF-8"):
        validate_question(f"届出は必要ですか{undecodable}", LIMIT)
    with pytest.raises(InputError, match="空"):
        validate_question("  \n ", LIMIT)
    with pytest.raises(InputError, match="長すぎ"):
        validate_question("あ" * (LIMIT + 1), LIMIT)
    with pytest.raises(InputError, match="文字列"):
        validate_question(["届出"], LIMIT)


def test_a_few_control_codes_are_dropped_from_an_otherwise_readable_question() -> None:
    question = "子ども医療費助成の\x07届出は\x1b必要ですか？\n詳しく教えてください"
    assert validate_question(question, LIMIT) == "子ども医療費助成の届出は必要ですか？\n詳しく教えてください"
    assert clean_text("a\x00b\x08c\td\ud800e\uffffg") == "abc\tdeg"


@pytest.mark.parametrize("session_id", ["c1", "chat-0123abcd", "check_A-9", "x" * 128, "  padded  ", "c1\n"])
def test_session_ids_of_the_alphabet_are_accepted(session_id: str) -> None:
    assert validate_session_id(session_id) == session_id.strip()


@pytest.mark.parametrize(
    "session_id",
    ["", "   ", None, 12, "x" * 129, "../../../../../outside/x", "a/b", "a\\b", "..", "a.b", "相談1", "a b", "a\x00b"],
)
def test_other_session_ids_are_refused(session_id: object) -> None:
    with pytest.raises(InputError):
        validate_session_id(session_id)
