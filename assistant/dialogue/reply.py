"""Help-desk reply drafts: a pasted inquiry in, a letter from the commission's secretariat out.

The inquiry is masked first. Its introduction sets the consultation state (which affair, what changes); each
question it asks is then read and answered in order with that state, and the letter says which part of the
inquiry each paragraph answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.answer.model import Answer, Statement
from assistant.answer.render import citation_numbers, citations_for_output, source_entries, to_markdown
from assistant.dialogue.export import check_format, write_text, write_text_docx
from assistant.dialogue.state import ConversationState
from assistant.privacy import MASK_TOKEN, mask_personal_data
from assistant.validation import validate_question

_SUBJECT = re.compile(r"^(件名|subject)\s*[:：]\s*(?P<subject>.+)$", re.IGNORECASE)
_HEADER = re.compile(r"^(from|to|cc|date|送信者|差出人|宛先|送信日時|日時)\s*[:：]", re.IGNORECASE)
_SIGNATURE = re.compile(r"^([-=＝ー―_＿*＊~〜]{3,}|--)\s*$")
_QUOTE_PREFIX = re.compile(r"^[>＞]+\s*")
# A numbered item starts a new question: 1. / 1) / (1) / （１） / ① / 問1 / Q1 / 質問1.
_ITEM = re.compile(r"^(\(?[0-9０-９]{1,2}[.)．）、]|[（(][0-9０-９]{1,2}[)）]|[①-⑳]|(問|Q|質問)\s*[0-9０-９]{1,2}[.:：．）)]?)\s*")
_SENTENCE = re.compile(r"(?<=[。？?])")
_QUESTION_END = re.compile(r"(か|か。|？|\?)\s*$")
QUOTE_MAX_CHARS = 60


@dataclass
class AnsweredQuestion:
    question: str
    answer: Answer


def parse_inquiry(masked: str) -> tuple[str, list[str], list[str]]:
    """The subject, the context lines and the questions of an inquiry (headers and signature dropped)."""
    subject = ""
    lines: list[str] = []
    raw_lines = [_QUOTE_PREFIX.sub("", raw.strip()) for raw in masked.split("\n")]
    for index, line in enumerate(raw_lines):
        if _SIGNATURE.match(line):
            following = [x for x in raw_lines[index + 1 : index + 6] if x][:3]
            if any(_SUBJECT.match(x) or _HEADER.match(x) for x in following):
                lines = []  # a forwarded message starts here: what came before is the request to draft a reply
                continue
            break  # the signature
        header = _SUBJECT.match(line)
        if header:
            subject = header.group("subject").strip()
            continue
        if line and not _HEADER.match(line) and not MASK_TOKEN.fullmatch(line):
            lines.append(line)
    items: list[str] = []
    context: list[str] = []
    for line in lines:
        if _ITEM.match(line):
            items.append(_ITEM.sub("", line))
        elif items and not _QUESTION_END.search(items[-1]):
            items[-1] += line  # an item that continues on the next line
        else:
            context.append(line)
    if items:
        return subject, context, items
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(lines)) if s.strip()]
    questions = [s for s in sentences if _QUESTION_END.search(s)]
    if not questions:
        return subject, [], [" ".join(lines)]
    return subject, [s for s in sentences if s not in questions], questions


# How far a paragraph answers its question, for the officer who checks that nothing was missed.
ANSWERED = "answered"  # the paragraph states an answer
ASKS_BACK = "asks_back"  # it only asks the town for a missing fact
REFERRED = "referred"  # it only says the office will advise after hearing the details
UNANSWERED = "unanswered"  # it says nothing to the question


def coverage(answer: Answer) -> str:
    statements = answer.statements()
    if any(not s.consult for s in statements):
        return ANSWERED
    if answer.clarifying_question:
        return ASKS_BACK
    return REFERRED if statements else UNANSWERED


class ReplyDrafter:
    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant
        self.letter = assistant.answerer.planner.templates["letter"]

    def answer_questions(self, masked: str) -> tuple[str, list[AnsweredQuestion]]:
        subject, context, questions = parse_inquiry(masked)
        state = ConversationState(asker="staff")
        answerer = self.assistant.answerer
        if context:  # the introduction names the affair and the facts the questions rely on
            from assistant.dialogue.state import advance

            advance(state, self.assistant.read("\n".join(context)), answerer.reader.mention)
        answered = []
        for question in questions:
            reading = self.assistant.read(question)
            if set(reading.intents) <= {"reply_draft", "greeting"}:
                continue
            answer, _focus = answerer.respond(reading, state)
            answered.append(AnsweredQuestion(question, answer))
        return subject or self.letter["subject_default"], answered

    def draft(self, inquiry: str) -> dict[str, Any]:
        validate_question(inquiry, self.assistant.settings.max_question_chars)
        masked, masked_kinds = mask_personal_data(inquiry)
        subject, answered = self.answer_questions(masked)
        combined = Answer()
        paragraphs: list[list[str]] = []
        for number, item in enumerate(answered, start=1):
            remap = {i: combined.cite(c) for i, c in enumerate(item.answer.citations)}
            paragraphs.append(self._paragraph(number, item, remap, combined))
        addressee = self.letter["addressee_masked"] if "name" in masked_kinds else self.letter["addressee"]
        parts = [f"件名: Re: {subject}", "", addressee, "", self.letter["opening"], ""]
        for paragraph in paragraphs:
            parts += [*paragraph, ""]
        entries = source_entries(combined)
        if entries:
            parts += [self.letter["sources"], *[f"[{e.number}] {e.text()}" for e in entries], ""]
        parts.append(self.letter["closing"])
        return {
            "draft": "\n".join(parts),
            "citations": citations_for_output(combined),
            "masked": sorted(set(masked_kinds)),
            "subject": subject,
            "questions": [
                {"question": a.question, "paragraph": number, "coverage": coverage(a.answer),
                 "answer": to_markdown(a.answer), "notification_type": a.answer.notification_type,
                 "cases": a.answer.cases}
                for number, a in enumerate(answered, start=1)
            ],
        }

    def _paragraph(self, number: int, item: AnsweredQuestion, remap: dict[int, int], combined: Answer) -> list[str]:
        letter = self.letter
        quoted = item.question if len(item.question) <= QUOTE_MAX_CHARS else item.question[:QUOTE_MAX_CHARS] + "…"
        topic = self.assistant.reader_model.labels.intents.get(item.answer.intents[0], "") if item.answer.intents else ""
        lines = [letter["question_heading"].format(number=number, topic=topic or "お問い合わせ"),
                 letter["quoted_question"].format(question=quoted)]
        consult_said = False
        for statement in item.answer.statements():
            if statement.consult:
                if not consult_said:
                    lines.append(letter["consult"])
                    consult_said = True
                continue
            lines.append(self._sentence(statement, remap, combined))
        if item.answer.clarifying_question:
            lines.append(letter["ask"].format(question=item.answer.clarifying_question))
        return lines

    @staticmethod
    def _sentence(statement: Statement, remap: dict[int, int], combined: Answer) -> str:
        moved = Statement(statement.text, tuple(remap[r] for r in statement.refs if r in remap), statement.uncertain)
        combined.reasons.append(moved)  # registers the citations in reading order
        numbers = citation_numbers(combined)
        refs = "".join(f"[{numbers[r]}]" for r in sorted(set(moved.refs)) if r in numbers)
        return ("【要確認】" if moved.uncertain else "") + moved.text + (refs and f" {refs}")

    def export(self, draft_text: str, fmt: str, output: Path) -> Path:
        fmt = check_format(fmt, ("txt", "docx"))
        masked, _ = mask_personal_data(draft_text)
        if fmt == "txt":
            return write_text(masked, Path(output))
        return write_text_docx(masked, Path(output), "回答案")

