"""Japanese text normalisation and masking of personal data pasted by mistake."""

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


def normalize_inline(text: str) -> str:
    """Normalised text on one line (for matching and short fields)."""
    return " ".join(normalize(text).split())


# Personal data: the My Number (12 digits, optionally grouped 4-4-4), phone numbers, e-mail
# addresses, and values written after labels such as 氏名 or 生年月日.
_MY_NUMBER = re.compile(r"(?<![0-9])[0-9]{4}[-‐ ]?[0-9]{4}[-‐ ]?[0-9]{4}(?![0-9])")
_PHONE = re.compile(r"(?<![0-9])0[0-9]{1,4}-[0-9]{1,4}-[0-9]{3,4}(?![0-9])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_LABELLED = re.compile(
    r"(?P<label>氏名|名前|お名前|生年月日|住所|個人番号|マイナンバー)(?P<sep>\s*[:：は]\s*)(?P<value>[^\s、。,，)）]{2,30})"
)

MASK_MY_NUMBER = "[個人番号マスク済]"
MASK_PHONE = "[電話番号マスク済]"
MASK_EMAIL = "[メールアドレスマスク済]"
MASK_LABELLED = "[個人情報マスク済]"
MASK_NAME = "[氏名マスク済]"
_NOT_NAMES = {"事務", "情報", "職員", "担当", "届出", "所管", "予定", "対象", "事業", "制度", "手続", "内容", "窓口", "者", "方"}
# A writer introducing themselves (「こども家庭課の山田です」): the name is personal data too.
_SELF_INTRODUCTION = re.compile(
    r"(?<=[\u4e00-\u9fff\u3040-\u30ff])(?P<unit>(課|係|室|班|担当|センター|事務所)(の|、|\s))(?P<name>[\u4e00-\u9fff々]{1,4})"
    r"(?P<tail>\s*(です|でございます|と申します))"
)


def mask_personal_data(text: str) -> tuple[str, list[str]]:
    """Return the text with personal data masked, and the kinds of data that were masked."""
    found: list[str] = []
    text = unicodedata.normalize("NFKC", text)

    def _sub(pattern: re.Pattern[str], replacement: str, kind: str, value: str) -> str:
        new_value, count = pattern.subn(replacement, value)
        if count:
            found.append(kind)
        return new_value

    text = _sub(_EMAIL, MASK_EMAIL, "email", text)
    text = _sub(_MY_NUMBER, MASK_MY_NUMBER, "my_number", text)
    text = _sub(_PHONE, MASK_PHONE, "phone", text)

    def _labelled(match: re.Match[str]) -> str:
        if match.group("value").startswith("["):
            return match.group(0)
        found.append("labelled")
        return f"{match.group('label')}{match.group('sep')}{MASK_LABELLED}"

    text = _LABELLED.sub(_labelled, text)
    def _self_introduction(match: re.Match[str]) -> str:
        if match.group("name") in _NOT_NAMES:
            return match.group(0)
        return f"{match.group('unit')}{MASK_NAME}{match.group('tail')}"

    text, names = _SELF_INTRODUCTION.subn(_self_introduction, text)
    names = sum(1 for _ in re.finditer(re.escape(MASK_NAME), text))
    if names:
        found.append("name")
    return text, sorted(set(found))
