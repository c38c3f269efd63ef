"""Help-desk reply drafts: masked inquiry in, polite cited draft out, exported as text or DOCX."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document

from assistant.dialogue.reply import ReplyDrafter, answer_sections, inquiry_question, mask_inquiry
from assistant.service import InputError

INQUIRY = """件名: ひとり親家庭医療費助成の届出について
個人情報保護委員会事務局 御中

いつもお世話になっております。
〇〇市こども家庭課の山田です。
当市のひとり親家庭医療費助成（届出済み）で、住民票関係情報を追加で照会したいと考えています。
何の届出が必要でしょうか。
連絡先は 03-1234-5678、yamada@example.lg.jp です。
よろしくお願いいたします。
--
〇〇市 こども家庭課 山田
"""
SECRETS = ("03-1234-5678", "yamada@example.lg.jp", "山田")


@pytest.fixture(scope="module")
def drafted(assistant) -> dict:  # noqa: ANN001
    return ReplyDrafter(assistant).draft(INQUIRY)


def test_draft_structure_and_tone(drafted: dict) -> None:
    draft = drafted["draft"]
    headings = ["■ 結論", "■ 根拠", "■ 確認させていただきたい事項", "■ 今後の手続", "■ 出典"]
    positions = [draft.index(h) for h in headings]
    assert positions == sorted(positions)
    assert draft.startswith("件名: Re: ひとり親家庭医療費助成の届出について")
    assert "ご回答いたします" in draft and draft.rstrip().endswith("何卒よろしくお願い申し上げます。")
    assert "変更の届出" in draft
    assert drafted["result"]["notification_type"] == "change"


def test_grounds_are_cited_with_verbatim_quotes(drafted: dict, assistant) -> None:  # noqa: ANN001
    draft = drafted["draft"]
    grounds = draft.split("■ 根拠", 1)[1].split("■ 確認させていただきたい事項", 1)[0]
    assert "[1]" in grounds
    by_id = assistant.index.by_id
    assert drafted["citations"]
    for number, citation in enumerate(drafted["citations"], start=1):
        assert citation["quote"] in by_id[citation["source_id"]].text
        assert f"[{number}] {citation['title']}" in draft
    steps = draft.split("■ 今後の手続", 1)[1].split("■ 出典", 1)[0]
    assert "受付" in steps and "提出するもの" in steps


def test_personal_data_is_masked_first(drafted: dict) -> None:
    assert {"phone", "email", "name"} <= set(drafted["masked"])
    for secret in SECRETS:
        assert secret not in drafted["draft"]
        assert secret not in drafted["question"]
        assert secret not in drafted["result"]["question"]


def test_clarifying_questions_when_facts_are_missing(assistant) -> None:  # noqa: ANN001
    result = ReplyDrafter(assistant).draft("子ども医療費助成で情報連携したいのですが、何の届出が必要ですか。")
    questions = result["draft"].split("■ 確認させていただきたい事項", 1)[1].split("■ 今後の手続", 1)[0]
    assert "届出をしていますか" in questions


def test_export_text_and_docx(drafted: dict, assistant, tmp_path: Path) -> None:  # noqa: ANN001
    drafter = ReplyDrafter(assistant)
    text_path = drafter.export(drafted["draft"], "txt", tmp_path / "reply.txt")
    assert text_path.read_text(encoding="utf-8").startswith("件名: Re:")
    docx_path = drafter.export(drafted["draft"] + "\n担当 03-9999-0000", "docx", tmp_path / "reply.docx")
    paragraphs = [p.text for p in Document(str(docx_path)).paragraphs]
    assert "結論" in paragraphs and "今後の手続" in paragraphs
    assert not any("03-9999-0000" in p for p in paragraphs)
    with pytest.raises(InputError):
        drafter.export("x", "pdf", tmp_path / "reply.pdf")


def test_helpers() -> None:
    subject, body = inquiry_question("件名: 質問\nお世話になっております。\n届出の種類を教えてください。\n---\n署名")
    assert subject == "質問" and body == "届出の種類を教えてください。"
    masked, kinds = mask_inquiry("福祉課の佐藤と申します。")
    assert "佐藤" not in masked and kinds == ["name"]
    sections = answer_sections("**結論**\nA。\n\n**理由・根拠**\n- B [1]\n\n**出典**\n[1] T")
    assert sections["結論"] == ["A。"] and sections["理由・根拠"] == ["B [1]"]


def test_empty_inquiry_is_rejected(assistant) -> None:  # noqa: ANN001
    with pytest.raises(InputError):
        ReplyDrafter(assistant).draft("   ")
