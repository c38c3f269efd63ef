"""Help-desk reply drafts: an inquiry (e-mail text) in, a polite business-Japanese draft out.

The inquiry is masked first; its question is answered by the LLM-free composer, and the draft is
laid out as 結論 → 根拠 (cited) → 確認させていただきたい事項 → 今後の手続, followed by the sources.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.citations import cite
from assistant.dialogue.export import check_format, citation_line, write_text, write_text_docx
from assistant.textnorm import mask_personal_data
from assistant.validation import validate_question

SECTION = re.compile(r"^\*\*(結論|理由・根拠|確認が必要な点|出典)\*\*$")
_SUBJECT = re.compile(r"^(件名|subject)\s*[:：]\s*(?P<subject>.+)$", re.IGNORECASE)
_HEADER = re.compile(r"^(from|to|cc|date|送信者|差出人|宛先|送信日時|日時)\s*[:：]", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"お世話になって|お疲れ様|お疲れさま|いつも大変|いつもありがとう|突然のご連絡|よろしくお願い|宜しくお願い|以上、?です|"
    r"^以上$|御中$|様$|^[\[［]?(個人情報|電話番号|メールアドレス|個人番号)マスク済[\]］]?$"
)
_SIGNATURE = re.compile(r"^([-=＝ー―_＿*＊~〜]{3,}|--)\s*$")
DEFAULT_SUBJECT = "独自利用事務の情報連携に関するお問い合わせ"


def mask_inquiry(text: str) -> tuple[str, list[str]]:
    """Personal data masked before anything else sees the inquiry (names in self-introductions included)."""
    return mask_personal_data(text)


def inquiry_question(masked: str) -> tuple[str, str]:
    """The subject line and the body of the inquiry without headers, greetings and signature."""
    subject = DEFAULT_SUBJECT
    body: list[str] = []
    for raw in masked.split("\n"):
        line = raw.strip()
        if _SIGNATURE.match(line):
            break
        header = _SUBJECT.match(line)
        if header:
            subject = header.group("subject").strip()
            continue
        if not line or _HEADER.match(line) or _BOILERPLATE.search(line):
            continue
        body.append(line)
    return subject, "\n".join(body) or masked


def answer_sections(answer: str) -> dict[str, list[str]]:
    """The composer's answer split into its sections (lines without list markers)."""
    sections: dict[str, list[str]] = {"結論": [], "理由・根拠": [], "確認が必要な点": [], "出典": []}
    current = "結論"
    for raw in answer.split("\n"):
        line = raw.strip()
        heading = SECTION.match(line)
        if heading:
            current = heading.group(1)
            continue
        if line:
            sections[current].append(re.sub(r"^- ", "", line).replace("**", ""))
    return sections


class ReplyDrafter:
    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant

    def draft(self, inquiry: str) -> dict[str, Any]:
        validate_question(inquiry, self.assistant.settings.max_question_chars)
        masked, masked_kinds = mask_inquiry(inquiry)
        subject, question = inquiry_question(masked)
        result = self.assistant.ask(question[: self.assistant.settings.max_question_chars])
        citations = list(result["citations"])
        sections = answer_sections(result["answer"])
        parts = [
            f"件名: Re: {subject}",
            "",
            "ご担当者様",
            "",
            "お問い合わせいただき、ありがとうございます。",
            "独自利用事務の情報連携に関するお問い合わせにつきまして、下記のとおりご回答いたします。",
            "",
            "■ 結論",
            *self._conclusion(sections, result),
            "",
            "■ 根拠",
            *self._grounds(sections, result),
            "",
            "■ 確認させていただきたい事項",
            *self._questions(sections, result),
            "",
            "■ 今後の手続",
            *self._next_steps(result, citations),
            "",
            "■ 出典",
            *([citation_line(n, c) for n, c in enumerate(citations, start=1)] or ["（該当する資料はありません）"]),
            "",
            "ご不明な点がございましたら、お気軽にお問い合わせください。",
            "何卒よろしくお願い申し上げます。",
        ]
        return {
            "draft": "\n".join(parts),
            "citations": citations,
            "masked": sorted(set(masked_kinds) | set(result.get("masked", []))),
            "result": result,
            "subject": subject,
            "question": question,
        }

    def export(self, draft_text: str, fmt: str, output: Path) -> Path:
        fmt = check_format(fmt, ("txt", "docx"))
        masked, _ = mask_inquiry(draft_text)
        if fmt == "txt":
            return write_text(masked, Path(output))
        return write_text_docx(masked, Path(output), "回答案")

    # -- sections ---------------------------------------------------------------------------------
    @staticmethod
    def _conclusion(sections: dict[str, list[str]], result: dict[str, Any]) -> list[str]:
        if result["out_of_scope"]:
            return [line for line in sections["結論"] if line] or ["お問い合わせの内容は、独自利用事務の情報連携の範囲外と考えられます。"]
        return sections["結論"] or ["ご質問に直接お答えできる記載は、手元の資料に見当たりませんでした。"]

    @staticmethod
    def _grounds(sections: dict[str, list[str]], result: dict[str, Any]) -> list[str]:
        lines = ["・" + re.sub(r"^(【要確認】)?・", r"\1", line) for line in sections["理由・根拠"]]
        if not lines:
            return ["・該当する資料の記載はありません。" if not result["out_of_scope"] else "・（対象外のため省略いたします）"]
        return lines

    @staticmethod
    def _questions(sections: dict[str, list[str]], result: dict[str, Any]) -> list[str]:
        lines = []
        if result["needs_clarification"] and result["clarifying_question"]:
            lines.append(f"・{result['clarifying_question']}")
        for line in sections["確認が必要な点"]:
            text = line.removeprefix("確認させてください: ")
            if text != result.get("clarifying_question"):
                lines.append(f"・{text}")
        return lines or ["・現時点で追加で確認させていただきたい事項はございません。"]

    def _next_steps(self, result: dict[str, Any], citations: list[dict[str, Any]]) -> list[str]:
        by_id = self.assistant.index.by_id

        def ref(source_id: str, needles: list[str]) -> tuple[str, int] | None:
            chunk = by_id.get(source_id)
            if chunk is None:
                return None
            citation = cite(chunk, needles).to_dict()
            for number, existing in enumerate(citations, start=1):
                if existing["source_id"] == citation["source_id"] and existing["quote"] == citation["quote"]:
                    return citation["quote"], number
            citations.append(citation)
            return citation["quote"], len(citations)

        if result["out_of_scope"]:
            return ["・上記の窓口にお問い合わせくださいますようお願いいたします。"]
        lines: list[str] = []
        code = result["notification_type"]
        if code:
            for needle in ("提出するもの", "受付", "方法"):
                found = ref(f"notice-{code}", [needle])
                if found and found[0].startswith(needle):
                    lines.append(f"・{found[0]} [{found[1]}]")
        elif result["needs_clarification"]:
            lines.append("・上記の事項をお知らせいただけましたら、該当する届出の種類と手続をご案内いたします。")
        found = ref("schedule-consultation-any-time", ["事前相談"])
        if found:
            lines.append(f"・{found[0]} [{found[1]}]")
        lines.append("・判断に迷われる点がございましたら、個人情報保護委員会事務局への事前相談をご検討ください。")
        return lines
