"""Help-desk reply drafts: every question of the inquiry answered in order, in the office's voice."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document

from assistant.dialogue.reply import ReplyDrafter, parse_inquiry
from assistant.service import InputError

INQUIRY = """件名: ひとり親家庭医療費助成の届出について
個人情報保護委員会事務局 御中

いつもお世話になっております。
〇〇市こども家庭課の山田です。
当市のひとり親家庭医療費助成（届出済み）について、次の3点を教えてください。
1. 住民票関係情報を追加で照会したいのですが、何の届出が必要でしょうか。
2. その届出はいつ提出できますか。
3. 提出の前に確認しておくことはありますか。
連絡先は 03-1234-5678、yamada@example.lg.jp です。
よろしくお願いいたします。
--
〇〇市 こども家庭課 山田
"""
SECRETS = ("03-1234-5678", "yamada@example.lg.jp", "山田")


@pytest.fixture(scope="module")
def drafted(assistant) -> dict:  # noqa: ANN001
    return ReplyDrafter(assistant).draft(INQUIRY)


def test_every_question_is_answered_in_order(drafted: dict) -> None:
    draft = drafted["draft"]
    assert draft.startswith("件名: Re: ひとり親家庭医療費助成の届出について")
    headings = [draft.index(f"{n}. ") for n in (1, 2, 3)]
    assert headings == sorted(headings)
    first, second, third = (draft[headings[i]: headings[i + 1] if i < 2 else None] for i in range(3))
    assert "変更の届出" in first and "受付期間" in second and "事前準備" in third
    assert [q["notification_type"] for q in drafted["questions"]][0] == "change"
    assert all(q["cases"] == [10] for q in drafted["questions"])


def test_the_office_does_not_tell_the_town_to_ask_the_office(assistant) -> None:  # noqa: ANN001
    draft = ReplyDrafter(assistant).draft("所管が市長部局から教育委員会に移ります。届出済みの就学援助はどうなりますか。")["draft"]
    assert "事務局に" not in draft.replace("当事務局", "")
    assert "当事務局" in draft


def test_sources_are_listed_once_in_letter_form(drafted: dict) -> None:
    draft = drafted["draft"]
    sources = draft.split("（出典）", 1)[1].split("ご不明な点", 1)[0].strip().split("\n")
    assert sources and len(sources) == len(set(sources))
    assert not any(".yaml" in line or "qa-" in line for line in sources)


def test_personal_data_is_masked_first_and_the_name_is_a_placeholder(drafted: dict) -> None:
    assert {"phone", "email", "name"} <= set(drafted["masked"])
    for secret in SECRETS:
        assert secret not in drafted["draft"]
    assert "（ご担当者名）様" in drafted["draft"]


def test_clarifying_question_when_facts_are_missing(assistant) -> None:  # noqa: ANN001
    result = ReplyDrafter(assistant).draft("子ども医療費助成について、何の届出が必要ですか。")
    assert "お知らせください" in result["draft"] and "届出をしていますか" in result["draft"]


def test_export_text_and_docx(drafted: dict, assistant, tmp_path: Path) -> None:  # noqa: ANN001
    drafter = ReplyDrafter(assistant)
    text_path = drafter.export(drafted["draft"], "txt", tmp_path / "reply.txt")
    assert text_path.read_text(encoding="utf-8").startswith("件名: Re:")
    docx_path = drafter.export(drafted["draft"] + "\n担当 03-9999-0000", "docx", tmp_path / "reply.docx")
    paragraphs = [p.text for p in Document(str(docx_path)).paragraphs]
    assert any(p.startswith("1. ") for p in paragraphs)
    assert not any("03-9999-0000" in p for p in paragraphs)
    with pytest.raises(InputError):
        drafter.export("x", "pdf", tmp_path / "reply.pdf")


def test_parse_inquiry() -> None:
    subject, context, questions = parse_inquiry("件名: 質問\nA町です。\n(1) 届出の種類は？\n(2) 受付期間は\nいつですか。\n---\n署名")
    assert subject == "質問" and context == ["A町です。"]
    assert questions == ["届出の種類は？", "受付期間はいつですか。"]
    _subject, _context, plain = parse_inquiry("子ども医療費助成で連携したい。何の届出ですか。いつ出せますか。")
    assert plain == ["何の届出ですか。", "いつ出せますか。"]


def test_empty_inquiry_is_rejected(assistant) -> None:  # noqa: ANN001
    with pytest.raises(InputError):
        ReplyDrafter(assistant).draft("   ")


def test_each_question_names_the_paragraph_that_answers_it(drafted: dict) -> None:
    from assistant.dialogue.reply import ANSWERED

    questions = drafted["questions"]
    assert [q["paragraph"] for q in questions] == [1, 2, 3]
    assert all(q["coverage"] == ANSWERED for q in questions)
    assert questions[0]["question"].startswith("住民票関係情報を追加で照会したい")
    for q in questions:
        assert f"{q['paragraph']}. " in drafted["draft"]


def test_a_question_without_an_answer_is_reported(assistant) -> None:  # noqa: ANN001
    from assistant.answer.model import Answer, Statement
    from assistant.dialogue.reply import ANSWERED, ASKS_BACK, REFERRED, UNANSWERED, coverage

    assert coverage(Answer()) == UNANSWERED
    assert coverage(Answer(clarifying_question="届出済みですか。")) == ASKS_BACK
    assert coverage(Answer(conclusion=[Statement("詳しく伺います。", consult=True)])) == REFERRED
    assert coverage(Answer(conclusion=[Statement("変更の届出です。")])) == ANSWERED
