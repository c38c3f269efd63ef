from assistant.textnorm import MASK_MY_NUMBER, mask_personal_data, normalize


def test_normalize_nfkc_and_spaces_between_japanese() -> None:
    assert normalize("ＡＢＣ　１２３") == "ABC 123"
    assert normalize("独 自 利 用 事 務") == "独自利用事務"
    assert normalize("a\r\n\r\n\r\n\r\nb") == "a\n\nb"


def test_masks_my_number_in_all_common_forms() -> None:
    for raw in ("123456789012", "1234 5678 9012", "1234-5678-9012", "１２３４５６７８９０１２"):
        masked, kinds = mask_personal_data(f"番号は{raw}です")
        assert MASK_MY_NUMBER in masked and "my_number" in kinds
        assert "9012" not in masked


def test_masks_contacts_and_labelled_values_but_not_short_numbers() -> None:
    masked, kinds = mask_personal_data("氏名：山田太郎、電話 03-1234-5678、mail a.b@example.jp、条例第145号")
    assert "山田太郎" not in masked and "03-1234-5678" not in masked and "example.jp" not in masked
    assert "第145号" in masked
    assert set(kinds) == {"email", "phone", "labelled"}


def test_masks_names_in_self_introductions() -> None:
    masked, kinds = mask_personal_data("お世話になります。こども家庭課の山田です。届出について教えてください。")
    assert "山田" not in masked and "こども家庭課の[氏名マスク済]です" in masked
    assert "name" in kinds


def test_self_introduction_rule_leaves_domain_sentences_alone() -> None:
    text = "照会する項目に住民票関係情報を追加したいです。担当の事務です。"
    assert mask_personal_data(text) == (text, [])
