"""Typed personal data never reaches the database file, an exported file or a model's prompt.

Each path is driven through its service with values in notations people paste (full-width digits, minus
signs, ー, dots, +81, ＠, self-introductions and 担当：…), then the SQLite file, the exports and the
prompts a recording chat model received are searched for every piece of those values.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from assistant.answer.model import Statement
from assistant.dialogue.chat import ChatService
from assistant.dialogue.checklist import ChecklistService
from assistant.dialogue.reply import ReplyDrafter
from assistant.llm import Phraser
from assistant.llm.backends import message_text

# A My Number with a valid check digit, one with a wrong one, two phones, an address, two names.
PERSONAL = (
    "個人番号は４８２１−３３９０−１２７７、もう一人は7038.1592.6440です。"
    "携帯は０９０ー７７１３ー４４２１、代表は+81 (0)3 5511 7729、メールはｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｌｇ．ｊｐ。"
    "私は山田と申します。担当：鈴木。"
)
# Every piece that must not be found anywhere (digit groups are checked outside timestamp columns).
LONG_NEEDLES = ["482133901277", "4821−3390−1277", "４８２１", "7038.1592", "703815926440", "7713", "09077134421", "5511 7729",
                "yamada", "ｙａｍａｄａ", "example.lg.jp", "山田", "鈴木"]
DIGIT_GROUPS = ["4821", "3390", "1277", "7038", "1592", "6440", "7713", "4421", "5511", "7729"]
QUESTION = "子ども医療費助成で情報連携を始めたい。届出はまだです。何の届出が必要ですか。"


def _database_path(service: Any) -> Path:
    return Path(service.store.engine.url.database)


def _database_text(path: Path) -> str:
    """Every text value in every table, read from the SQLite file itself (timestamp columns left out)."""
    values = []
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")') if not row[1].endswith("_at")]
            for row in connection.execute(f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} FROM "{table}"'):
                values += [str(v) for v in row if v is not None]
    return "\n".join(values)


def _raw_files(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def _assert_clean(text: str, where: str, *, groups: bool = True) -> None:
    leaked = [n for n in LONG_NEEDLES + (DIGIT_GROUPS if groups else []) if n in text]
    assert not leaked, f"{where}: {leaked}"


def _assert_database_clean(service: Any) -> None:
    path = _database_path(service)
    _assert_clean(_database_text(path), "database rows")
    raw = _raw_files(path)
    leaked = [n for n in LONG_NEEDLES if n.encode("utf-8") in raw]
    assert not leaked, f"database file bytes: {leaked}"


def _docx_text(path: Path) -> str:
    document = Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def test_chat_turn_and_feedback_store_no_personal_data(db_assistant) -> None:  # noqa: ANN001
    chat = ChatService(db_assistant)
    result = chat.turn("privacy-chat", f"{QUESTION}{PERSONAL}")
    assert {"my_number", "number_12", "phone", "email", "name"} <= set(result["masked"])
    _assert_clean(str(result), "turn result")
    chat.feedback("privacy-chat", 1, -1, f"回答が違います。{PERSONAL}")
    _assert_clean(str(chat.history("privacy-chat")), "history")
    _assert_database_clean(chat)


class RecordingChatModel(BaseChatModel):
    """A chat model that keeps every prompt it is sent and answers with a fixed text."""

    prompts: list[str] = Field(default_factory=list)
    reply: str = "新規の届出が必要です[1]。"

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.prompts.append("\n".join(message_text(m) for m in messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])


def test_llm_prompt_and_stored_turn_hold_no_personal_data(db_assistant) -> None:  # noqa: ANN001
    model = RecordingChatModel()
    phraser = Phraser(model, db_assistant.settings.prompts_dir, db_assistant.index.by_id, "recording")
    chat = ChatService(db_assistant, phraser=phraser)
    result = chat.turn("privacy-llm", f"{QUESTION}{PERSONAL}")
    assert model.prompts, result.get("llm")
    for prompt in model.prompts:
        _assert_clean(prompt, "prompt")
    _assert_database_clean(chat)


def test_phraser_masks_what_it_sends_even_when_given_raw_text(db_assistant) -> None:  # noqa: ANN001
    model = RecordingChatModel()
    phraser = Phraser(model, db_assistant.settings.prompts_dir, db_assistant.index.by_id, "recording")
    answer, _reading, _masked = db_assistant.answer(QUESTION)
    answer.conclusion.append(Statement(PERSONAL, answer.conclusion[0].refs))  # raw text inside the answer object
    phraser.phrase(f"{QUESTION}{PERSONAL}", answer)
    assert model.prompts
    _assert_clean(model.prompts[0], "prompt")


def test_checklist_answers_and_sheets_hold_no_personal_data(db_assistant, tmp_path: Path) -> None:  # noqa: ANN001
    service = ChecklistService(db_assistant)
    service.step("privacy-sheet", None)
    # who writes the sheet, with personal data in every field, then the affair
    for answer in (f"〇〇市（{PERSONAL}）", f"こども家庭課 {PERSONAL}", f"山田 太郎 {PERSONAL}", PERSONAL):
        _assert_clean(str(service.step("privacy-sheet", answer)), "checklist view")
    assert service.step("privacy-sheet", None)["step"] == "affair-name"
    view = service.step("privacy-sheet", f"子ども医療費助成事務（{PERSONAL}）")
    _assert_clean(str(view), "checklist view")
    service.step("privacy-sheet", f"〇〇市子ども医療費助成条例。記入者：山田 太郎 {PERSONAL}")
    _assert_database_clean(service)
    markdown = service.export("privacy-sheet", "md", tmp_path / "sheet.md").read_text(encoding="utf-8")
    assert "子ども医療費助成事務" in markdown
    _assert_clean(markdown, "sheet.md", groups=False)
    _assert_clean(_docx_text(service.export("privacy-sheet", "docx", tmp_path / "sheet.docx")), "sheet.docx", groups=False)
    _assert_clean(_pdf_text(service.export("privacy-sheet", "pdf", tmp_path / "sheet.pdf")), "sheet.pdf", groups=False)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return "".join(page.extract_text() for page in reader.pages) + str(dict(reader.metadata or {}))


INQUIRY = f"""件名: 子ども医療費助成の届出について
個人情報保護委員会事務局 御中

お世話になっております。〇〇市こども家庭課の山田です。
{QUESTION}
参考までに、{PERSONAL}
よろしくお願いいたします。

〇〇市 こども家庭課
山田 太郎
TEL ０３（５５１１）７７２９
"""


@pytest.mark.parametrize("fmt", ["txt", "docx"])
def test_reply_draft_and_its_exports_hold_no_personal_data(db_assistant, tmp_path: Path, fmt: str) -> None:  # noqa: ANN001
    drafter = ReplyDrafter(db_assistant)
    outcome = drafter.draft(INQUIRY)
    assert {"my_number", "phone", "email", "name"} <= set(outcome["masked"])
    _assert_clean(str(outcome), "draft outcome", groups=False)
    edited = outcome["draft"] + f"\n\n（追記）{PERSONAL}\n担当 鈴木"  # a user pastes the values into the draft
    path = drafter.export(edited, fmt, tmp_path / f"reply.{fmt}")
    text = path.read_text(encoding="utf-8") if fmt == "txt" else _docx_text(path)
    assert "1. " in text and "回答いたします" in text
    _assert_clean(text, f"reply.{fmt}", groups=False)
