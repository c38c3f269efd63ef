"""The one masker of personal data: My Numbers, phone numbers, e-mail addresses and names in typed text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assistant.privacy import (
    KINDS,
    MASK_EMAIL,
    MASK_LABELLED,
    MASK_MY_NUMBER,
    MASK_NAME,
    MASK_NUMBER_12,
    MASK_PHONE,
    MASK_TOKEN,
    Masker,
    VocabularyError,
    find_numbers,
    find_personal_data,
    is_valid_my_number,
    kind_label,
    kind_labels,
    load_vocabulary,
    mask_personal_data,
    my_number_check_digit,
)

ROOT = Path(__file__).resolve().parent.parent
FULL_WIDTH = str.maketrans("0123456789+()-", "０１２３４５６７８９＋（）－")

# Check digits worked out by hand from the definition (weights 2–7 then 2–6 from the right, mod 11).
HAND_CHECKED = {"12345678901": 8, "00000000000": 0, "00000000001": 9, "10000000000": 5, "00000000006": 0}
VALID_MY_NUMBERS = ["123456789018", "482133901277", "703815926448", "771355102463"]
INVALID_MY_NUMBERS = ["123456789012", "482133901276", "703815926440", "771355102460"]

DASHES = ["-", "‐", "‑", "‒", "–", "—", "―", "−", "ー", "ｰ", "－", "﹣"]
MY_NUMBER_SEPARATORS = ["", *DASHES, ".", "・", " ", "  ", "   ", "　", "　　", "\t", " - ", "－ "]
PHONE_SEPARATORS = [*DASHES, ".", " ", "  ", "　", " - "]
CONTEXTS = ["{}", "個人番号は{}です。", "マイナンバー：{}", "（{}）の方", "番号{}について", "連絡先 {}、よろしくお願いします"]


def _digits_outside_tokens(text: str) -> str:
    return "".join(re.findall(r"[0-9]", MASK_TOKEN.sub("", text)))


def my_number_notations(digits: str) -> list[str]:
    groups = (digits[:4], digits[4:8], digits[8:])
    notations = [sep.join(groups) for sep in MY_NUMBER_SEPARATORS]
    notations += [f"{groups[0]}-{groups[1]} {groups[2]}", f"{groups[0]}ー{groups[1]}.{groups[2]}", f"{groups[0]}{groups[1]} {groups[2]}"]
    notations += [n.translate(FULL_WIDTH) for n in notations[:8]]
    return notations


# -- the check digit -----------------------------------------------------------------------------------
@pytest.mark.parametrize("first_eleven, check", HAND_CHECKED.items())
def test_check_digit_matches_hand_computation(first_eleven: str, check: int) -> None:
    assert my_number_check_digit(first_eleven) == check
    assert is_valid_my_number(f"{first_eleven}{check}")


def test_exactly_one_last_digit_is_valid() -> None:
    for number in VALID_MY_NUMBERS:
        valid = [d for d in "0123456789" if is_valid_my_number(number[:11] + d)]
        assert valid == [number[11]]
    assert not any(is_valid_my_number(n) for n in INVALID_MY_NUMBERS)
    assert not is_valid_my_number("１２３４５６７８９０１８")  # digits are normalised before the check
    with pytest.raises(ValueError):
        my_number_check_digit("1234")


# -- My Numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", VALID_MY_NUMBERS)
def test_valid_my_numbers_are_masked_in_every_notation(number: str) -> None:
    for notation in my_number_notations(number):
        for context in CONTEXTS:
            masked, kinds = mask_personal_data(context.format(notation))
            assert MASK_MY_NUMBER in masked and kinds == ["my_number"], (notation, masked)
            assert _digits_outside_tokens(masked) == "", masked


@pytest.mark.parametrize("number", INVALID_MY_NUMBERS)
def test_twelve_digits_with_a_wrong_check_digit_are_masked_as_a_possible_my_number(number: str) -> None:
    for notation in my_number_notations(number):
        masked, kinds = mask_personal_data(f"個人番号は{notation}です")
        assert MASK_NUMBER_12 in masked and kinds == ["number_12"], (notation, masked)
        assert _digits_outside_tokens(masked) == ""


NOT_PERSONAL = [
    "2026-04-01に施行", "2026/04/01", "2026.04.01", "令和8年4月1日", "2026年度から", "1,000,000円", "予算は123456789012円です",
    "¥123456789012", "1234567890円の事業費", "番号法第19条第9号", "第9条第2項", "令和6年(行ウ)第123号", "第123456789012号",
    "法人番号1234567890123", "法人番号 1234567890123 の団体", "〒100-0013", "10:30から", "バージョン1.2.3", "2024-2025年",
    "202604011230", "1234-5678-9012-3456", "0.312345678", "事例番号(13)", "別表第5項から第6項", "人口は123456人",
    "受付は年3回、4月・8月・12月", "https://www.town.example.lg.jp/kurashi/2020-0625-1758-15.html",
]


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert mask_personal_data(text) == (text, [])


# -- phone numbers ------------------------------------------------------------------------------------
PHONES = {  # national number → its usual grouping
    "0312345678": (2, 4, 4),
    "0451234567": (3, 3, 4),
    "0123456789": (4, 2, 4),
    "0112345678": (3, 3, 4),
    "09012345678": (3, 4, 4),
    "08098765432": (3, 4, 4),
    "05012345678": (3, 4, 4),
    "0120123456": (4, 3, 3),
    "0570123456": (4, 3, 3),
    "08001234567": (4, 3, 4),
}


def phone_notations(number: str, sizes: tuple[int, ...]) -> list[str]:
    cut = [0, sizes[0], sizes[0] + sizes[1], len(number)]
    area, local, subscriber = (number[cut[i] : cut[i + 1]] for i in range(3))
    notations = [number, f"{area}-{local}{subscriber}"]
    notations += [sep.join((area, local, subscriber)) for sep in PHONE_SEPARATORS]
    notations += [f"({area}){local}-{subscriber}", f"({area}) {local}-{subscriber}", f"{area}({local}){subscriber}"]
    rest = area[1:]
    notations += [
        f"+81 {rest}-{local}-{subscriber}",
        f"+81-{rest}-{local}-{subscriber}",
        f"+81 (0){rest} {local} {subscriber}",
        f"+81(0){rest}-{local}-{subscriber}",
        f"+81{number[1:]}",
        f"+81 {rest} {local} {subscriber}",
    ]
    notations += [n.translate(FULL_WIDTH) for n in (number, f"{area}-{local}-{subscriber}", f"+81 {rest}-{local}-{subscriber}")]
    return notations


@pytest.mark.parametrize("number, sizes", PHONES.items())
def test_phone_numbers_are_masked_in_every_notation(number: str, sizes: tuple[int, ...]) -> None:
    for notation in phone_notations(number, sizes):
        for context in ("{}", "電話は{}です。", "TEL{}", "連絡先（{}）まで", "{}へお電話ください", "携帯:{}、"):
            masked, kinds = mask_personal_data(context.format(notation))
            assert MASK_PHONE in masked and kinds == ["phone"], (notation, masked)
            assert _digits_outside_tokens(masked) == "", masked


def test_phone_digits_are_reported_in_national_form() -> None:
    numbers = find_numbers("代表 +81 (0)3-1234-5678、携帯 ０９０ー１２３４ー５６７８")
    assert [(n.kind, n.digits) for n in numbers] == [("phone", "0312345678"), ("phone", "09012345678")]


def test_two_numbers_separated_by_a_space_are_two_numbers() -> None:
    masked, kinds = mask_personal_data("03-1234-5678 03-1234-5679 〒100-0013 03-5555-0123")
    assert masked == f"{MASK_PHONE} {MASK_PHONE} 〒100-0013 {MASK_PHONE}" and kinds == ["phone"]


# -- e-mail addresses -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "連絡先はyamada@example.lg.jpです",
        "ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｌｇ．ｊｐまでお願いします",
        "メール：taro.yamada+pf@city.example.jp。",
        "yamada[at]example.jp へ",
        "mailto:yamada@example.jp",
        "（yamada_t@pref.example.lg.jp）",
    ],
)
def test_email_addresses_are_masked(text: str) -> None:
    masked, kinds = mask_personal_data(text)
    assert MASK_EMAIL in masked and kinds == ["email"]
    assert "yamada" not in masked


# -- names --------------------------------------------------------------------------------------------
NAMES = [
    ("私は山田と申します。", "私は[氏名マスク済]と申します。"),
    ("山田太郎と申します。", "[氏名マスク済]と申します。"),
    ("私はやまだと申します", "私は[氏名マスク済]と申します"),
    ("ヤマダタロウと申します", "[氏名マスク済]と申します"),
    ("○○課の佐藤です。", "○○課の[氏名マスク済]です。"),
    ("こども家庭課の山田でございます。", "こども家庭課の[氏名マスク済]でございます。"),
    ("○○市子育て給付課の森です。", "○○市子育て給付課の[氏名マスク済]です。"),
    ("情報政策課山田と申します", "情報政策課[氏名マスク済]と申します"),
    ("中村と申します", "[氏名マスク済]と申します"),
    ("お世話になっております。山田です。", "お世話になっております。[氏名マスク済]です。"),
    ("私は林です", "私は[氏名マスク済]です"),
    ("担当：鈴木", "担当:[氏名マスク済]"),
    ("担当者: 鈴木一郎", "担当者: [氏名マスク済]"),
    ("(担当 田中)", "(担当 [氏名マスク済])"),
    ("（担当　田中）", "(担当 [氏名マスク済])"),
    ("記入者：佐々木 花子", "記入者:[氏名マスク済]"),
    ("担当：情報政策課 鈴木様", "担当:情報政策課 [氏名マスク済]様"),
    ("担当は山田です。", "担当は[氏名マスク済]です。"),
    ("From: 山田太郎 <yamada@example.jp>", "From: [氏名マスク済] <[メールアドレスマスク済]>"),
    ("申請者の例として 山田花子さん", "申請者の例として [氏名マスク済]さん"),
    ("鈴木次郎（123456789018）さんの情報", "[氏名マスク済]([個人番号マスク済])さんの情報"),
    ("〇〇市 こども家庭課 山田", "〇〇市 こども家庭課 [氏名マスク済]"),
    ("〇〇市こども家庭課\n山田 太郎\nTEL 03-1234-5678", "〇〇市こども家庭課\n[氏名マスク済]\nTEL [電話番号マスク済]"),
    ("担当：山田 03-1234-5678", "担当:[氏名マスク済] [電話番号マスク済]"),
    ("佐藤浩市と申します", "[氏名マスク済]と申します"),
    ("担当：佐藤浩市", "担当:[氏名マスク済]"),
    ("福祉課の佐藤課長です", "福祉課の[氏名マスク済]課長です"),
]

NOT_NAMES = [
    "担当課に確認します", "担当者を決める", "事務の担当者は未定です", "担当 事務", "担当は福祉課です", "担当者は誰ですか",
    "同様に取り扱います", "申請様式を確認", "お客様", "皆様", "ご担当者様", "個人情報保護委員会事務局 御中",
    "これを情報連携といいます", "独自利用事務と言います", "こども家庭課の所管です", "市の方針です", "委員会の判断です",
    "照会者は市長です", "妊婦さんの医療費", "障害のある子の親御さん", "お子さんの医療費", "事務の名前は子ども医療費助成事務です",
    "個人番号は利用できますか", "生年月日は照会できますか", "住所は照会できますか", "氏名は照会できますか",
    "教育委員会 教育長", "担当部署：こども家庭課", "子育て支援課の担当です", "届出者は地方公共団体の長です",
    "情報政策課長様", "こども家庭課の課長です", "私は新任の担当者です", "課長決裁です", "高島市(滋賀県)", "東京都 千代田区",
]


@pytest.mark.parametrize("text, expected", NAMES)
def test_names_are_masked(text: str, expected: str) -> None:
    masked, kinds = mask_personal_data(text)
    assert masked == expected
    assert "name" in kinds


@pytest.mark.parametrize("text", NOT_NAMES)
def test_ordinary_words_are_not_names(text: str) -> None:
    masked, kinds = mask_personal_data(text)
    assert kinds == [] and masked == mask_personal_data(text)[0] and MASK_NAME not in masked


LABELLED = [
    ("氏名：山田 太郎、住所：東京都千代田区霞が関3-1-1", "氏名:[個人情報マスク済]、住所:[個人情報マスク済]"),
    ("氏名(フリガナ)：ヤマダ タロウ", "氏名(フリガナ):[個人情報マスク済]"),
    ("生年月日：昭和50年1月1日", "生年月日:[個人情報マスク済]"),
    ("生年月日は1980年1月1日です", "生年月日は[個人情報マスク済]"),
    ("住所 東京都千代田区霞が関3-1-1", "住所 [個人情報マスク済]"),
    ("私の名前は山田です", "私の名前は[個人情報マスク済]です"),
    ("基礎年金番号：1234-567890", "基礎年金番号:[個人情報マスク済]"),
    ("氏名\t山田太郎", "氏名\t[個人情報マスク済]"),
]


@pytest.mark.parametrize("text, expected", LABELLED)
def test_labelled_values_are_masked(text: str, expected: str) -> None:
    masked, kinds = mask_personal_data(text)
    assert masked == expected and kinds == ["labelled"]


def test_masking_is_idempotent() -> None:
    texts = [t for t, _ in NAMES + LABELLED] + ["個人番号 1234 5678 9018、電話 090-1234-5678、a@b.jp"]
    for text in texts:
        once, _ = mask_personal_data(text)
        assert mask_personal_data(once) == (once, [])


def test_findings_give_spans_and_kinds() -> None:
    text = "担当：鈴木（090-1234-5678）"
    findings = find_personal_data(text)
    assert [(f.kind, f.text) for f in findings] == [("name", "鈴木"), ("phone", "090-1234-5678")]


# -- kinds shown to users -----------------------------------------------------------------------------
def test_every_kind_has_a_japanese_label_and_a_token() -> None:
    for kind in KINDS.values():
        assert kind.token.startswith("[") and kind.token.endswith("マスク済]")
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", kind.label) and not re.search(r"[A-Za-z]", kind.label)
    assert kind_label("name") == "氏名" and kind_label("phone") == "電話番号" and kind_label("email") == "メールアドレス"
    assert kind_label("my_number") == "個人番号" and kind_label("whatever") == "個人情報"
    assert kind_labels(["phone", "name", "phone"]) == ["電話番号", "氏名"]
    assert {MASK_MY_NUMBER, MASK_NUMBER_12, MASK_PHONE, MASK_EMAIL, MASK_NAME, MASK_LABELLED} == {k.token for k in KINDS.values()}


# -- the vocabulary is data ---------------------------------------------------------------------------
def test_vocabulary_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "privacy.yaml"
    path.write_text((ROOT / "corpus" / "privacy.yaml").read_text(encoding="utf-8").replace("non_names:", "non_names_x:"), encoding="utf-8")
    with pytest.raises(VocabularyError, match="non_names"):
        load_vocabulary(path)
    path.write_text("labelled_values: [{value: colour, labels: [色]}]\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="value"):
        load_vocabulary(path)


def test_non_names_come_from_the_vocabulary(tmp_path: Path) -> None:
    text = "こども家庭課の山田です"
    path = tmp_path / "privacy.yaml"
    original = (ROOT / "corpus" / "privacy.yaml").read_text(encoding="utf-8")
    path.write_text(original.replace("[者, 方, 人,", "[山田, 者, 方, 人,"), encoding="utf-8")
    assert Masker(load_vocabulary(path)).mask(text).text == text
    assert Masker(load_vocabulary(ROOT / "corpus" / "privacy.yaml")).mask(text).text == "こども家庭課の[氏名マスク済]です"


# -- our own texts ------------------------------------------------------------------------------------
def test_corpus_and_prompts_contain_nothing_to_mask() -> None:
    files = sorted([*ROOT.glob("corpus/**/*.yaml"), *ROOT.glob("corpus/**/*.md"), *ROOT.glob("prompts/*.md")])
    assert len(files) > 10
    found = {str(p.relative_to(ROOT)): [(f.kind, f.text) for f in find_personal_data(p.read_text(encoding="utf-8"))] for p in files}
    assert {k: v for k, v in found.items() if v} == {}


# Evaluation questions written with personal data in them on purpose; every other one has none.
EVAL_WITH_PERSONAL_DATA = {"q-006", "q-060", "q-077", "q-092", *(f"f-q-{n:03d}" for n in range(1, 16)), "f-q-029"}


def test_evaluation_questions_are_masked_only_where_they_hold_personal_data() -> None:
    with_findings = set()
    for path in sorted(ROOT.glob("eval/**/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            texts = [item["text"]] if "text" in item else [t["text"] for t in item.get("turns", [])]
            for text in texts:
                masked, kinds = mask_personal_data(text)
                if kinds:
                    with_findings.add(item["id"])
                    assert not re.search(r"[0-9]{4}[^0-9]?[0-9]{4}", masked), (item["id"], masked)
    assert with_findings == EVAL_WITH_PERSONAL_DATA


# -- property tests: random notations in Japanese text -------------------------------------------------
FRAGMENTS = [
    "個人番号は", "マイナンバー：", "申請者の番号 ", "です。", "の方について", "（", "）", "、", "連絡先", "電話", "携帯", "TEL",
    "まで", "照会したい。", "子ども医療費助成", "\n", " ", "　", "について教えてください", "データ", "お世話になります。", "番号:",
]
text_around = st.lists(st.sampled_from(FRAGMENTS), max_size=4).map("".join)


def _width(text: str, full: list[bool]) -> str:
    return "".join(ch.translate(FULL_WIDTH) if wide else ch for ch, wide in zip(text, full))


@st.composite
def my_number_texts(draw: st.DrawFn) -> tuple[str, bool]:
    first = draw(st.text("0123456789", min_size=11, max_size=11))
    valid = draw(st.booleans())
    check = my_number_check_digit(first)
    last = check if valid else draw(st.sampled_from([d for d in range(10) if d != check]))
    digits = f"{first}{last}"
    seps = draw(st.one_of(st.just(("", "")), st.tuples(st.sampled_from(MY_NUMBER_SEPARATORS), st.sampled_from(MY_NUMBER_SEPARATORS))))
    if not valid and seps == ("", ""):
        assume(not re.fullmatch(r"(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])[0-5]\d", digits))
    notation = f"{digits[:4]}{seps[0]}{digits[4:8]}{seps[1]}{digits[8:]}"
    notation = _width(notation, draw(st.lists(st.booleans(), min_size=len(notation), max_size=len(notation))))
    return draw(text_around) + notation + draw(text_around), valid


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(my_number_texts())
def test_property_my_numbers_never_leak(case: tuple[str, bool]) -> None:
    text, valid = case
    masked, kinds = mask_personal_data(text)
    assert _digits_outside_tokens(masked) == ""
    assert ("my_number" if valid else "number_12") in kinds


@st.composite
def phone_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["fixed", "mobile", "0120", "0570", "0800"]))
    if kind == "fixed":
        area_len = draw(st.integers(2, 5))
        area = "0" + draw(st.sampled_from("123456789")) + draw(st.text("0123456789", min_size=area_len - 2, max_size=area_len - 2))
        local = draw(st.text("0123456789", min_size=6 - area_len, max_size=6 - area_len))
        subscriber = draw(st.text("0123456789", min_size=4, max_size=4))
    else:
        area = {"mobile": draw(st.sampled_from(["070", "080", "090", "050", "020"])), "0120": "0120", "0570": "0570", "0800": "0800"}[kind]
        local_len, sub_len = {"mobile": (4, 4), "0120": (3, 3), "0570": (3, 3), "0800": (3, 4)}[kind]
        local = draw(st.text("0123456789", min_size=local_len, max_size=local_len))
        subscriber = draw(st.text("0123456789", min_size=sub_len, max_size=sub_len))
    form = draw(st.sampled_from(["plain", "grouped", "area_parens", "local_parens", "international", "international_zero"]))
    sep = st.sampled_from(PHONE_SEPARATORS)
    if form == "plain":
        notation = area + local + subscriber
    elif form == "grouped":
        notation = f"{area}{draw(sep)}{local}{draw(sep)}{subscriber}"
    elif form == "area_parens":
        notation = f"({area}){draw(st.sampled_from(['', ' ']))}{local}{draw(sep)}{subscriber}"
    elif form == "local_parens":
        notation = f"{area}({local}){subscriber}"
    else:
        zero = "(0)" if form == "international_zero" else ""
        notation = f"+81{draw(st.sampled_from(['', ' ', '-']))}{zero}{area[1:]}{draw(sep)}{local}{draw(sep)}{subscriber}"
    notation = _width(notation, draw(st.lists(st.booleans(), min_size=len(notation), max_size=len(notation))))
    return draw(text_around) + notation + draw(text_around)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phone_texts())
def test_property_phone_numbers_never_leak(text: str) -> None:
    masked, kinds = mask_personal_data(text)
    assert _digits_outside_tokens(masked) == ""
    assert "phone" in kinds


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_property_any_text_is_masked_without_error_and_idempotently(text: str) -> None:
    once, _ = mask_personal_data(text)
    assert mask_personal_data(once) == (once, [])


SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木", "山口",
            "松本", "井上", "木村", "林", "斎藤", "清水", "阿部", "村上", "市川", "町田", "長谷川", "室井", "服部"]
GIVEN_NAMES = ["", "太郎", "花子", "一郎", "美咲", "健一", "浩市", "正道", "由美", "翔太"]
DEPARTMENTS = ["こども家庭課", "情報政策課", "福祉総務課", "保険年金課", "市民課住民係", "〇〇市子育て支援課", "健康づくりセンター", "総務課法制担当"]
NAME_TEMPLATES = [
    "{n}と申します。", "私は{n}と申します。", "{d}の{n}です。", "{d}の{n}でございます。", "{d}、{n}と申します。",
    "担当：{n}", "担当者: {n}", "(担当 {n})", "記入者：{n}", "{d} {n}\n", "{d}\n{n}\n", "お世話になっております。{n}です。",
    "{n}さんの件", "\nFrom: {n} <x@example.jp>",
]


@st.composite
def name_texts(draw: st.DrawFn) -> tuple[str, str, str]:
    surname, given = draw(st.sampled_from(SURNAMES)), draw(st.sampled_from(GIVEN_NAMES))
    name = surname + (draw(st.sampled_from(["", " ", "　"])) if given else "") + given
    template = draw(st.sampled_from(NAME_TEMPLATES))
    text = template.format(n=name, d=draw(st.sampled_from(DEPARTMENTS)))
    return draw(text_around) + text + draw(st.sampled_from(["", "。", "\n", "よろしくお願いします。"])), surname, given


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name_texts())
def test_property_names_in_introductions_and_labels_never_leak(case: tuple[str, str, str]) -> None:
    text, surname, given = case
    masked, kinds = mask_personal_data(text)
    assert "name" in kinds
    assert surname not in masked and (not given or given not in masked), masked
