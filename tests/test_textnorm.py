"""Japanese text normalisation (the masker of personal data is tested in tests/test_privacy.py)."""

from assistant import privacy, textnorm
from assistant.textnorm import normalize, normalize_inline


def test_normalize_nfkc_and_spaces_between_japanese() -> None:
    assert normalize("ＡＢＣ　１２３") == "ABC 123"
    assert normalize("独 自 利 用 事 務") == "独自利用事務"
    assert normalize("a\r\n\r\n\r\n\r\nb") == "a\n\nb"


def test_normalize_inline_and_control_characters() -> None:
    assert normalize_inline("届出\n\n の\t種類\x07") == "届出 の種類"


def test_the_old_import_path_is_the_one_masker() -> None:
    assert textnorm.mask_personal_data is privacy.mask_personal_data
