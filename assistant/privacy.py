"""Personal data in typed text: the one place that finds and masks it.

Everything is found in NFKC-normalised text (full-width digits, letters, colons and spaces become ASCII):

- 12-digit numbers, contiguous or grouped 4-4-4 (4-8, 8-4) with any dash, dot, middle dot or spaces. One
  whose check digit is right is a My Number (個人番号). One whose check digit is wrong is masked too, as a
  12-digit number that may be a mistyped My Number, and reported as such (`number_12`). Left alone: a
  contiguous 12-digit timestamp (YYYYMMDDhhmm) with a wrong check digit, digits that belong to a longer
  number (13-digit 法人番号, 16-digit card numbers written with dashes), amounts (…円) and 第…号.
- Japanese phone numbers: fixed lines (10 digits), mobile / IP / 0800 (11 digits), 0120 / 0570,
  contiguous or grouped with any dash, ー, dot, spaces or parentheses, and +81 forms (+81 (0)3 …).
- E-mail addresses (also with ＠, [at], (at)).
- Names: in self-introductions (「…と申します」「○○課の山田です」「お世話になっております。山田です。」
  「私は…です」), after person labels (「担当：鈴木」「(担当 田中)」「記入者：…」「From: …」), before
  honorifics (「山田さん」) and in signatures (「〇〇市 福祉課 山田」, a name alone on the line after a
  department); values after personal-data labels (「氏名：…」「住所：…」「生年月日：…」).

When in doubt the masker masks more, not less: a department glued to a name (「医療費助成山田と申します」)
is masked with it, and 12 grouped digits are masked whatever they stand for. Names that no rule above
introduces (「山田課長にご確認いただき」) are not recognised: there is no dictionary of names.

The words that make a label, a department, a title or an ordinary noun are data in corpus/privacy.yaml.
The mask tokens and the Japanese names of the kinds are defined here, once, for every caller.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assistant.yamlio import load_yaml

from assistant.config import DEFAULT_CORPUS_DIR

VOCABULARY_PATH = DEFAULT_CORPUS_DIR / "privacy.yaml"


# -- kinds, tokens and labels ---------------------------------------------------------------------
@dataclass(frozen=True)
class MaskKind:
    key: str
    token: str
    label: str  # shown to users


KIND_MY_NUMBER = MaskKind("my_number", "[個人番号マスク済]", "個人番号")
KIND_NUMBER_12 = MaskKind("number_12", "[12桁の番号マスク済]", "12桁の番号（個人番号の可能性）")
KIND_PHONE = MaskKind("phone", "[電話番号マスク済]", "電話番号")
KIND_EMAIL = MaskKind("email", "[メールアドレスマスク済]", "メールアドレス")
KIND_NAME = MaskKind("name", "[氏名マスク済]", "氏名")
KIND_LABELLED = MaskKind("labelled", "[個人情報マスク済]", "氏名・住所・生年月日などの個人情報")
KINDS: dict[str, MaskKind] = {
    kind.key: kind for kind in (KIND_MY_NUMBER, KIND_NUMBER_12, KIND_PHONE, KIND_EMAIL, KIND_NAME, KIND_LABELLED)
}
MASK_MY_NUMBER = KIND_MY_NUMBER.token
MASK_NUMBER_12 = KIND_NUMBER_12.token
MASK_PHONE = KIND_PHONE.token
MASK_EMAIL = KIND_EMAIL.token
MASK_NAME = KIND_NAME.token
MASK_LABELLED = KIND_LABELLED.token
MASK_TOKEN = re.compile("|".join(re.escape(kind.token) for kind in KINDS.values()))


def kind_label(kind: str) -> str:
    """The Japanese name of a kind of personal data (「個人情報」 for an unknown key)."""
    known = KINDS.get(str(kind))
    return known.label if known else "個人情報"


def kind_labels(kinds: Iterable[str]) -> list[str]:
    """Japanese names of the kinds, each once, in the given order."""
    return list(dict.fromkeys(kind_label(kind) for kind in kinds))


# -- the My Number check digit -----------------------------------------------------------------------
def my_number_check_digit(first_eleven: str) -> int:
    """The check digit of a My Number from its first 11 digits.

    With P(n) the n-th digit counted from the right of the 11 digits, weights Q(n) = n + 1 for n ≤ 6 and
    n − 5 for n ≥ 7; r = Σ P(n)·Q(n) mod 11; the check digit is 0 when r ≤ 1, else 11 − r.
    """
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise ValueError("the first 11 digits of a My Number are needed")
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        total += int(digit) * (n + 1 if n <= 6 else n - 5)
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_my_number(digits: str) -> bool:
    """12 ASCII digits whose last one is the check digit of the first 11."""
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    return my_number_check_digit(digits[:11]) == int(digits[11])


# -- the vocabulary (corpus/privacy.yaml) ------------------------------------------------------------
class VocabularyError(ValueError):
    """corpus/privacy.yaml is missing or malformed."""


VALUE_TYPES = ("name", "address", "date", "number")


@dataclass(frozen=True)
class Vocabulary:
    labelled_values: dict[str, str]  # label → value type
    person_labels: tuple[str, ...]  # after a colon or spaces
    person_labels_colon_only: tuple[str, ...]
    department_words: tuple[str, ...]
    place_words: tuple[str, ...]
    surname_endings: tuple[str, ...]
    title_words: tuple[str, ...]
    self_words: tuple[str, ...]
    person_words: tuple[str, ...]
    honorifics: tuple[str, ...]
    greetings: tuple[str, ...]
    name_followers: tuple[str, ...]
    non_names: frozenset[str]
    non_name_endings: tuple[str, ...]
    amount_units: tuple[str, ...]
    reference_prefixes: tuple[str, ...]
    ten_digit_prefixes_with_zero: tuple[str, ...]
    eleven_digit_prefixes: tuple[str, ...]


def _words(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int)) and str(v) for v in value):
        raise VocabularyError(f"{where}: field {key}: a non-empty list of words is required")
    return tuple(unicodedata.normalize("NFKC", str(v)) for v in value)


def _mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise VocabularyError(f"{where}: field {key}: a mapping is required")
    return value


def load_vocabulary(path: Path = VOCABULARY_PATH) -> Vocabulary:
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise VocabularyError(f"{Path(path).name}: cannot be read: {exc}") from exc
    where = Path(path).name
    if not isinstance(data, dict):
        raise VocabularyError(f"{where}: the file must hold a mapping")
    labelled: dict[str, str] = {}
    groups = data.get("labelled_values")
    if not isinstance(groups, list) or not groups:
        raise VocabularyError(f"{where}: field labelled_values: a list of {{value, labels}} entries is required")
    for index, group in enumerate(groups, start=1):
        entry = f"{where}: labelled_values #{index}"
        if not isinstance(group, dict) or group.get("value") not in VALUE_TYPES:
            raise VocabularyError(f"{entry}: field value: one of {' / '.join(VALUE_TYPES)} is required")
        for label in _words(group, "labels", entry):
            labelled[label] = group["value"]
    person = _mapping(data, "person_labels", where)
    phone = _mapping(data, "phone", where)
    return Vocabulary(
        labelled_values=labelled,
        person_labels=_words(person, "colon_or_space", f"{where}: person_labels"),
        person_labels_colon_only=_words(person, "colon_only", f"{where}: person_labels"),
        department_words=_words(data, "department_words", where),
        place_words=_words(data, "place_words", where),
        surname_endings=_words(data, "surname_endings", where),
        title_words=_words(data, "title_words", where),
        self_words=_words(data, "self_words", where),
        person_words=_words(data, "person_words", where),
        honorifics=_words(data, "honorifics", where),
        greetings=_words(data, "greetings", where),
        name_followers=_words(data, "name_followers", where),
        non_names=frozenset(_words(data, "non_names", where)),
        non_name_endings=_words(data, "non_name_endings", where),
        amount_units=_words(data, "amount_units", where),
        reference_prefixes=_words(data, "reference_prefixes", where),
        ten_digit_prefixes_with_zero=_words(phone, "ten_digit_prefixes_with_zero", f"{where}: phone"),
        eleven_digit_prefixes=_words(phone, "eleven_digit_prefixes", f"{where}: phone"),
    )


# -- patterns ---------------------------------------------------------------------------------------
_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ"
_KATAKANA = "\u30a1-\u30fa\u30fc"
_HIRAGANA = "\u3041-\u3096"
# Dash-like characters after NFKC (ｰ → ー, － → -, ‑ → ‐); with dots and middle dots they bind digit groups
# into one number, spaces and parentheses only separate them.
DASHES = "-‐‒–—―−ー"
_BINDING = DASHES + ".・"
_SEPARATOR = rf"[ \t]{{0,3}}(?:[{re.escape(_BINDING)}()][ \t]{{0,3}}){{1,2}}|[ \t]{{1,3}}"
_NUMBER_RUN = re.compile(rf"(?:\([ \t]?)?(?:\+[ \t]?)?(?:\([ \t]?)?[0-9]+(?:(?:{_SEPARATOR})[0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_MY_NUMBER_GROUPINGS = {(12,), (4, 4, 4), (4, 8), (8, 4)}
_MAX_GROUPS = 5  # +81 (0) 3 1234 5678
_SHORTEST_RUN = 10  # a run holds all its digits, and the shortest number masked has 10 (a phone number)

EMAIL_PATTERN = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*[ \t]?(?:@|\[at\]|\(at\))[ \t]?"
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    re.IGNORECASE,
)
URL_PATTERN = re.compile(r"(?:https?://|www\.)[^\s<>\"'()（）「」]+")

_NAME_KANJI = rf"[{_KANJI}]{{1,10}}(?: [{_KANJI}]{{1,6}})?"
_NAME_KATAKANA = rf"[{_KATAKANA}]{{2,12}}(?:[ ・][{_KATAKANA}]{{2,12}})?"
_NAME = rf"(?:{_NAME_KANJI}|{_NAME_KATAKANA})"
# After a colon a name may also be written in hiragana or Latin letters (「担当:やまだ」「From: Taro Yamada」).
_KANA_OR_LATIN_NAME = re.compile(rf"[{_HIRAGANA}]{{2,8}}(?: [{_HIRAGANA}]{{2,8}})?|[A-Za-z]{{2,15}}(?: [A-Za-z]{{2,15}})?")
_HAS_HIRAGANA = re.compile(f"[{_HIRAGANA}]")
_ALL_HIRAGANA = re.compile(f"[{_HIRAGANA}]+")
_JAPANESE_NAME = re.compile(_NAME)
# A name that starts where a run of its script starts (「データ佐藤」 → 佐藤, 「医療費助成山田」 → the whole run).
# The whole run is taken (up to 30 characters) and a department or title is cut off its start later.
_NAME_FROM_RUN_START = (
    rf"(?:(?<![{_KANJI}])[{_KANJI}]{{1,30}}(?: [{_KANJI}]{{1,6}})?|(?<![{_KATAKANA}]){_NAME_KATAKANA})"
)
_LINE = re.compile(r"[^\n]+")
_WORD = re.compile(r"\S+")
_CLOSERS = " \t)]」"
_INTRODUCTION_WORDS = ("と申します", "と申し上げます", "と申す者")
_INTRODUCTION_TAIL = rf"[ ]?(?:{'|'.join(_INTRODUCTION_WORDS)})"
_COPULA_WORDS = ("です", "でございます", "と申します", "といいます", "と言います")
_COPULA_TAIL = rf"[ ]?(?:{'|'.join(_COPULA_WORDS)})"
_VALUE_CHAR = r"[^\s、。,;:()<>\[\]「」『』【】|]"
_VALUE = rf"{_VALUE_CHAR}+(?:[ ](?!{_VALUE_CHAR}*:){_VALUE_CHAR}+){{0,3}}"
# A colon labels its value; a table bar, a tab or spaces only place it next to the label.
_LABEL_SEPARATOR = r"(?:(?P<colon>[ \t]*:[ \t]*)|(?P<space>[ \t]*\|[ \t]*|[ \t]+)|(?P<wa>は))"
_ADDRESS_HINT = re.compile(r"[0-9都道府県市区町村郡丁目番地号]")
_DATE_HINT = re.compile(r"[0-9]|明治|大正|昭和|平成|令和|[一二三四五六七八九十]+年")
_VALUE_TAILS = ("です", "でございます", "まで", "宛", "御中")


def _alternation(words: Iterable[str]) -> str:
    """Longest first; a word in Latin letters must not continue a Latin word (「To」 is not in 「Tokyo」)."""
    ordered = sorted(set(words), key=len, reverse=True)
    return "|".join(rf"(?<![A-Za-z]){re.escape(w)}" if w.isascii() and w.isalpha() else re.escape(w) for w in ordered)


# -- findings ---------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Finding:
    """One piece of personal data in NFKC-normalised text (kept in memory only, never stored)."""

    start: int
    end: int
    kind: str
    text: str


@dataclass(frozen=True)
class NumberMatch:
    kind: str  # phone | my_number | number_12
    start: int
    end: int
    digits: str  # the national phone number (0…) or the 12 digits


@dataclass(frozen=True)
class Masked:
    text: str
    kinds: list[str]
    counts: dict[str, int]


class _Spans:
    """Spans already claimed, kept as sorted disjoint intervals: later rules never overlap earlier ones."""

    def __init__(self, blocked: Iterable[tuple[int, int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in blocked:
            self.add(start, end)

    def conflict(self, start: int, end: int) -> tuple[int, int] | None:
        index = bisect.bisect_right(self.starts, start) - 1
        if index >= 0 and self.ends[index] > start:
            return self.starts[index], self.ends[index]
        if index + 1 < len(self.starts) and self.starts[index + 1] < end:
            return self.starts[index + 1], self.ends[index + 1]
        return None

    def add(self, start: int, end: int) -> None:
        low = bisect.bisect_left(self.ends, start)  # first interval that ends at or after `start`
        high = bisect.bisect_right(self.starts, end)  # intervals from `low` up to here touch the new one
        if low < high:
            start, end = min(start, self.starts[low]), max(end, self.ends[high - 1])
        self.starts[low:high] = [start]
        self.ends[low:high] = [end]


class _NeedsWord:
    """A pattern that can only match where one of its words occurs. A substring test for those words comes
    first: most texts hold none, and the expression's scan of a long document was most of the masking time."""

    def __init__(self, pattern: re.Pattern[str], words: Iterable[str]) -> None:
        self.pattern = pattern
        self.words = tuple(dict.fromkeys(w for w in words if w))
        self.groupindex = pattern.groupindex

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if any(word in text for word in self.words):
            yield from self.pattern.finditer(text)


class Masker:
    """Finds and masks personal data with one vocabulary; thread-safe (immutable after construction)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = v = vocabulary
        self._ten_zero = v.ten_digit_prefixes_with_zero
        self._eleven = v.eleven_digit_prefixes
        self._non_names = v.non_names
        units = (*v.department_words, *v.title_words, *v.place_words)
        honorifics = _alternation(v.honorifics)
        labels = _alternation((*v.person_labels, *v.person_labels_colon_only))
        self._introduction = _NeedsWord(
            re.compile(rf"(?P<name>{_NAME_FROM_RUN_START})(?={_INTRODUCTION_TAIL})"), _INTRODUCTION_WORDS
        )
        self._self = _NeedsWord(re.compile(
            rf"(?:{_alternation(v.self_words)})(?:は|、|,)[ ]?"
            rf"(?P<name>{_NAME}(?={_COPULA_TAIL})|[{_HIRAGANA}]{{2,8}}(?=[ ]?と(?:申します|いいます|言います)))"
        ), v.self_words)
        self._affiliated = _NeedsWord(re.compile(
            rf"(?P<affiliation>[^\s、。,()]{{0,30}}?(?:{_alternation(units)}))(?:の|、|,| )[ ]?(?P<name>{_NAME})(?={_COPULA_TAIL})"
        ), _COPULA_WORDS)
        self._greeting = _NeedsWord(re.compile(
            rf"(?:{_alternation(v.greetings)})[ ]?[、。,.!！]?\s?(?P<name>{_NAME})"
            r"(?=[ ]?(?:です|でございます|と申します)(?:[。.!！、\s]|$))"
        ), v.greetings)
        self._honorific = _NeedsWord(re.compile(
            rf"(?P<name>{_NAME_FROM_RUN_START})(?:\([^()\n]{{1,30}}\))?[ ]?(?P<honorific>{honorifics})(?![{_KANJI}])"
        ), v.honorifics)
        self._person_label = re.compile(
            rf"(?P<label>{labels})(?:\([^()\n]{{1,10}}\))?{_LABEL_SEPARATOR}(?P<value>{_VALUE})",
            re.IGNORECASE,
        )
        self._labelled = re.compile(
            rf"(?P<label>{_alternation(v.labelled_values)})(?:\([^()\n]{{1,10}}\))?{_LABEL_SEPARATOR}(?P<value>{_VALUE})"
        )
        self._person_label_words = {w.lower() for w in v.person_labels}
        self._owner = re.compile(rf"(?:{_alternation(v.person_words)})の$")
        self._honorific_tokens = (*v.honorifics, *_VALUE_TAILS)
        # (word, characters needed before it) for cutting a department or title off the start of a name.
        # Places are never cut off (中村, 木村), nor words that also end surnames (小室).
        departments = [w for w in v.department_words if w not in v.surname_endings]
        self._cut_words: list[tuple[str, int]] = [(w, 2 if len(w) == 1 else 0) for w in departments]
        self._cut_words += [(w, 0) for w in v.title_words]

    # -- public --------------------------------------------------------------------------------------
    def mask(self, text: str) -> Masked:
        """The text (NFKC-normalised) with every finding replaced by its kind's token."""
        text = unicodedata.normalize("NFKC", text)
        findings = self.find(text)
        parts: list[str] = []
        last = 0
        counts: dict[str, int] = {}
        for finding in findings:
            parts += [text[last : finding.start], KINDS[finding.kind].token]
            last = finding.end
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        parts.append(text[last:])
        return Masked("".join(parts), sorted(counts), counts)

    def find(self, text: str) -> list[Finding]:
        """Personal data in NFKC-normalised text, in order and without overlaps."""
        spans = _Spans(m.span() for m in MASK_TOKEN.finditer(text))
        findings: list[Finding] = []

        def claim(kind: str, start: int, end: int, *, trim: bool = False) -> bool:
            conflict = spans.conflict(start, end)
            if conflict is not None:
                if not trim or conflict[0] <= start:
                    return False
                end = conflict[0]
                while end > start and text[end - 1] in " \t":
                    end -= 1
                if end <= start or spans.conflict(start, end):
                    return False
            spans.add(start, end)
            findings.append(Finding(start, end, kind, text[start:end]))
            return True

        for match in EMAIL_PATTERN.finditer(text):
            claim(KIND_EMAIL.key, *match.span())
        for match in URL_PATTERN.finditer(text):
            spans.add(*match.span())
        for number in self.find_numbers(text):
            claim(number.kind, number.start, number.end)
        self._find_labelled(text, claim)
        self._find_person_labels(text, claim)
        self._find_names(text, claim)
        return sorted(findings)

    # -- numbers -------------------------------------------------------------------------------------
    def find_numbers(self, text: str) -> list[NumberMatch]:
        """Phone numbers and 12-digit numbers in NFKC-normalised text (URLs are not looked into)."""
        urls = _Spans(m.span() for m in URL_PATTERN.finditer(text))
        found: list[NumberMatch] = []
        for run in _NUMBER_RUN.finditer(text):
            if run.end() - run.start() < _SHORTEST_RUN or urls.conflict(*run.span()):
                continue
            found.extend(self._numbers_in_run(text, run))
        return found

    def _numbers_in_run(self, text: str, run: re.Match[str]) -> Iterator[NumberMatch]:
        base = run.start()
        groups = [(base + m.start(), base + m.end()) for m in _DIGIT_GROUP.finditer(run.group(0))]
        separators = [text[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)]
        prefix = text[base : groups[0][0]]
        index = 0
        while index < len(groups):
            match = None
            if index == 0 or _separates(separators[index - 1]):
                for last in range(min(len(groups) - 1, index + _MAX_GROUPS - 1), index - 1, -1):
                    if last < len(groups) - 1 and not _separates(separators[last]):
                        continue
                    match = self._number(text, groups[index : last + 1], international=index == 0 and "+" in prefix)
                    if match is not None:
                        break
            if match is None:
                index += 1
                continue
            start = groups[index][0]
            if index == 0 and "(" in prefix and ")" in text[start : match[2]]:
                start = base
            elif index == 0 and match[0] == KIND_PHONE.key and "+" in prefix:
                start = base + prefix.index("+")
            yield NumberMatch(match[0], start, match[2], match[1])
            index = last + 1

    def _number(self, text: str, groups: list[tuple[int, int]], *, international: bool) -> tuple[str, str, int] | None:
        """(kind, digits, end) when the digit groups form a phone or a 12-digit number in their context."""
        parts = [text[s:e] for s, e in groups]
        digits = "".join(parts)
        start, end = groups[0][0], groups[-1][1]
        if international:
            if not digits.startswith("81") or not self._is_phone_number("0" + digits[2:].removeprefix("0")):
                return None
            return KIND_PHONE.key, "0" + digits[2:].removeprefix("0"), end
        if self._excluded(text, start, end, grouped=len(parts) > 1):
            return None
        sizes = tuple(len(p) for p in parts)
        if self._is_phone_number(digits) and _phone_grouping(sizes):
            return KIND_PHONE.key, digits, end
        if len(digits) == 12 and sizes in _MY_NUMBER_GROUPINGS and text[max(0, start - 1) : start] != "+":
            if is_valid_my_number(digits):
                return KIND_MY_NUMBER.key, digits, end
            if len(parts) == 1 and _looks_like_timestamp(digits):
                return None
            return KIND_NUMBER_12.key, digits, end
        return None

    def _is_phone_number(self, digits: str) -> bool:
        if not digits.startswith("0"):
            return False
        if len(digits) == 10:
            return digits[1] != "0" or digits.startswith(self._ten_zero)
        return len(digits) == 11 and digits.startswith(self._eleven)

    def _excluded(self, text: str, start: int, end: int, *, grouped: bool) -> bool:
        """An amount (…円, ¥…) or a reference (第…) rather than a personal number."""
        before = text[max(0, start - 3) : start].rstrip(" \t")
        if before.endswith(self.vocabulary.reference_prefixes):
            return True
        if grouped:
            return False
        return before.endswith(("¥", "$")) or self._unit_follows(text[end : end + 8].lstrip(" \t"))

    def _unit_follows(self, after: str) -> bool:
        """A unit of amount or count starts `after` as a word of its own (円, 万円 — not 個人, 回答)."""
        for unit in self.vocabulary.amount_units:
            if after.startswith(unit):
                rest = after[len(unit) :]
                if not re.match(f"[{_KANJI}]", rest) or self._unit_follows(rest):
                    return True
        return False

    # -- labelled values -----------------------------------------------------------------------------
    def _find_labelled(self, text: str, claim: Callable[..., bool]) -> None:
        for match in self._labelled.finditer(text):
            value_type = self.vocabulary.labelled_values[match.group("label")]
            span = self._labelled_value(text, match, value_type)
            if span is not None:
                claim(KIND_LABELLED.key, *span, trim=True)

    def _labelled_value(self, text: str, match: re.Match[str], value_type: str) -> tuple[int, int] | None:
        start, end = match.span("value")
        value = match.group("value")
        before = text[max(0, match.start() - 12) : match.start()]
        if value_type == "name" and before.endswith("の") and not self._owner.search(before):
            return None  # 「事務の名前は…」: the name of a thing
        if value_type == "number":
            return (start, end) if re.search(r"[0-9]", value) else None
        if match.group("colon"):
            return None if self._is_ordinary(value) else (start, end)
        if value_type == "name":
            name = _JAPANESE_NAME.match(value)
            if name is None or self._is_ordinary(name.group(0)) or self._is_affiliation(name.group(0), places=False):
                return None
            rest = value[name.end() :].lstrip(" ")
            if rest and not rest.startswith(("です", "でございます", "と申します", *self.vocabulary.honorifics)):
                return None
            return start, start + name.end()
        hint = _ADDRESS_HINT if value_type == "address" else _DATE_HINT
        return (start, end) if hint.search(value) else None

    def _find_person_labels(self, text: str, claim: Callable[..., bool]) -> None:
        for match in self._person_label.finditer(text):
            spaced_label = match.group("label").lower() in self._person_label_words
            if match.group("colon"):
                span = self._person_value(text, *match.span("value"), loose=True)
            elif not spaced_label:
                continue
            elif match.group("space"):
                span = self._person_value(text, *match.span("value"), loose=False)
            else:  # 「担当は山田です」
                name = re.match(rf"{_NAME}(?={_COPULA_TAIL}|[ ]?が担当)", match.group("value"))
                span = self._name_span(text, match.start("value"), match.start("value") + name.end()) if name else None
            if span is not None:
                claim(KIND_NAME.key, *span, trim=True)

    def _person_value(self, text: str, start: int, end: int, *, loose: bool) -> tuple[int, int] | None:
        """The name in a person label's value: departments before it and honorifics after it stay."""
        tokens = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
        numbered = next((i for i, token in enumerate(tokens) if re.search(r"[0-9]", text[slice(*token)])), None)
        tokens = tokens[:numbered]  # 「担当：山田 03-…」: the name ends where a number starts
        while tokens and text[slice(*tokens[-1])] in self._honorific_tokens:
            tokens.pop()
        while len(tokens) > 1 and self._is_affiliation(text[slice(*tokens[0])]):
            tokens.pop(0)
        tokens = tokens[:2]
        if len(tokens) == 2 and _HAS_HIRAGANA.search(text[slice(*tokens[1])]) and not _ALL_HIRAGANA.fullmatch(text[slice(*tokens[0])]):
            # 「鈴木 まで」: grammar, not a given name; 「佐藤 太郎よろしく…」: the given name is the kanji part
            given = _JAPANESE_NAME.match(text[slice(*tokens[1])])
            tokens = [tokens[0], (tokens[1][0], tokens[1][0] + given.end())] if given else tokens[:1]
        if not tokens:
            return None
        start, end = tokens[0][0], tokens[-1][1]
        for honorific in (*self.vocabulary.honorifics, "宛"):
            if text[start:end].endswith(honorific) and end - start > len(honorific):
                end -= len(honorific)
                break
        start += self._cut(text[start:end])
        candidate = text[start:end]
        if not (_JAPANESE_NAME.fullmatch(candidate) or (loose and _KANA_OR_LATIN_NAME.fullmatch(candidate))):
            # 「担当:山田について…」: the name is the kanji at the start. One kanji before kana is a word
            # (「決まり次第」), and ordinary words are checked below (「調整中です」).
            prefix = _JAPANESE_NAME.match(candidate)
            followed = prefix is not None and candidate[prefix.end():].startswith(self.vocabulary.name_followers)
            if prefix is None or (len(prefix.group(0)) < 2 and not followed):
                return None
            candidate, end = prefix.group(0), start + prefix.end()
        if self._is_ordinary(candidate) or self._is_affiliation(candidate, places=False):
            return None
        return start, end

    # -- names in running text -----------------------------------------------------------------------
    def _find_names(self, text: str, claim: Callable[..., bool]) -> None:
        # A self-introduction is a strong sign: one-character surnames (森, 林) count there.
        for pattern in (self._introduction, self._self, self._affiliated, self._greeting):
            for match in pattern.finditer(text):
                if "affiliation" in pattern.groupindex and not self._is_affiliation(match.group("affiliation")):
                    continue  # 「木村 太郎です」: 村 ends a surname here, not a village
                span = self._name_span(text, *match.span("name"), minimum=1, titled=True)
                if span is not None:
                    claim(KIND_NAME.key, *span)
        for match in self._honorific.finditer(text):
            # さん follows people (「佐藤浩市さん」); 様 also follows cities (「横浜市様」) and needs two characters
            # (同様, 仕様).
            casual = match.group("honorific") == "さん"
            span = self._name_span(text, *match.span("name"), minimum=1 if casual else 2, places=not casual)
            if span is not None:
                claim(KIND_NAME.key, *span)
        self._find_signatures(text, claim)

    def _find_signatures(self, text: str, claim: Callable[..., bool]) -> None:
        """Signatures: a name ending a line after a department (「〇〇市 福祉課 山田」), or a line that is only
        a name next to a line that ends with a department (「福祉課⏎山田 太郎」)."""
        lines = list(_LINE.finditer(text))
        last_words = [_WORD.findall(line.group(0).rstrip(_CLOSERS))[-1:] for line in lines]
        for index, line in enumerate(lines):
            body = line.group(0).rstrip(_CLOSERS)  # 「…課 山田)」
            words = [(line.start() + m.start(), line.start() + m.end()) for m in _WORD.finditer(body)]
            if not words:
                continue
            for count in (2, 1):
                if len(words) < count or not _JAPANESE_NAME.fullmatch(text[words[-count][0] : words[-1][1]]):
                    continue
                if len(words) > count:
                    beside = [text[slice(*words[-count - 1])]]
                else:
                    beside = [last_words[i][0] for i in (index - 1, index + 1) if 0 <= i < len(lines) and last_words[i]]
                if not any(self._is_affiliation(word) for word in beside):
                    continue
                # After a place only, a place is an address (「東京都 千代田区」); after a department it is a
                # person (「福祉課 佐藤浩市」).
                department = any(self._is_affiliation(word, places=False) for word in beside)
                span = self._name_span(text, words[-count][0], words[-1][1], minimum=1, places=not department)
                if span is not None and claim(KIND_NAME.key, *span):
                    break

    def _name_span(
        self, text: str, start: int, end: int, *, minimum: int = 2, places: bool = False, titled: bool = False
    ) -> tuple[int, int] | None:
        """Where the name is in a candidate run, once a leading department, place or title is cut off.

        With `titled`, a title after the name is left out too (「福祉課の佐藤課長です」); elsewhere a run that
        ends with a title is a title (「情報政策課長様」).
        """
        candidate = text[start:end]
        if " " in candidate:
            left = candidate.split(" ", 1)[0]
            if self._is_affiliation(left, places=places) or self._is_ordinary(left):
                start += len(left) + 1
        start += self._cut(text[start:end])
        if titled:
            title = next((w for w in sorted(self.vocabulary.title_words, key=len, reverse=True) if text[start:end].endswith(w)), "")
            if title and end - len(title) > start:
                end -= len(title)
                while end > start and text[end - 1] == " ":
                    end -= 1
        name = text[start:end]
        if len(name.replace(" ", "")) < minimum or self._is_ordinary(name) or self._is_affiliation(name, places=places):
            return None
        return start, end

    def _cut(self, run: str) -> int:
        """Length of a department or title at the start of a run (「情報政策課山田」 → 5)."""
        if run.startswith(self.vocabulary.self_words):
            word = next(w for w in self.vocabulary.self_words if run.startswith(w))
            if len(run) - len(word) >= 2:
                return len(word)
        best = 0
        for word, stem in self._cut_words:
            position = run.find(word)
            while position != -1:
                end = position + len(word)
                if position >= stem and len(run[end:].strip(" ")) >= 2:
                    best = max(best, end)
                position = run.find(word, position + 1)
        while best < len(run) and run[best] == " ":
            best += 1
        return best

    def _is_affiliation(self, word: str, *, places: bool = True) -> bool:
        """A department, place or title (「こども家庭課」「〇〇市」「課長」), not a name.

        With `places=False` a word ending like a place still counts as a name: where the context says
        a name follows (「…と申します」「担当：…」), 「佐藤浩市」 is a person, not a city.
        """
        v = self.vocabulary
        if word in v.self_words or word.endswith(v.title_words):
            return True
        for suffix in (*v.department_words, *(v.place_words if places else ())):
            if word.endswith(suffix) and len(word) - len(suffix) >= (2 if len(suffix) == 1 else 0):
                return True
        return False

    def _is_ordinary(self, word: str) -> bool:
        """A word that stands where a name could but is not one (「事務」「未定」「申請者」)."""
        word = word.strip()
        parts = re.split(r"[ ・]", word)
        return (
            word in self._non_names
            or any(part in self._non_names for part in parts)
            or word.endswith(self.vocabulary.non_name_endings)
        )


def _separates(separator: str) -> bool:
    """Spaces and parentheses separate two numbers; a dash or a dot makes them one."""
    return not any(ch in _BINDING for ch in separator)


def _phone_grouping(sizes: tuple[int, ...]) -> bool:
    if len(sizes) == 1:
        return True
    if len(sizes) == 2:
        return 2 <= sizes[0] <= 5 and 4 <= sizes[1] <= 8
    if len(sizes) == 3:
        return 2 <= sizes[0] <= 5 and 1 <= sizes[1] <= 4 and 3 <= sizes[2] <= 4
    return False


def _looks_like_timestamp(digits: str) -> bool:
    try:
        stamp = dt.datetime.strptime(digits, "%Y%m%d%H%M")
    except ValueError:
        return False
    return 1900 <= stamp.year <= 2099


# -- the module-level masker ------------------------------------------------------------------------
@functools.cache
def default_masker() -> Masker:
    """The masker built from corpus/privacy.yaml (loaded once per process)."""
    return Masker(load_vocabulary(VOCABULARY_PATH))


def mask_personal_data(text: str) -> tuple[str, list[str]]:
    """The text (NFKC-normalised) with personal data masked, and the sorted kinds that were masked."""
    masked = default_masker().mask(text)
    return masked.text, masked.kinds


def find_personal_data(text: str) -> list[Finding]:
    """Personal data in the NFKC-normalised text (for checks that must not store what they find)."""
    return default_masker().find(unicodedata.normalize("NFKC", text))


def find_numbers(text: str) -> list[NumberMatch]:
    """Phone numbers and 12-digit numbers in the NFKC-normalised text."""
    return default_masker().find_numbers(unicodedata.normalize("NFKC", text))
