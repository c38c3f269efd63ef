"""Optional LLM phrasing of an answer from the same retrieved passages, behind guard rails.

The composer's result (its citations and their chunks) is the only material the model sees, and
every text put into the prompt passes the masker of personal data first. The model's text is checked sentence by sentence (assistant.llm.guard); when too little survives, the
composer's own answer is used instead. Prompts are files in `settings.prompts_dir`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.chunk import Chunk
from assistant.llm.backends import LLMConfigError, create_chat_model, message_text
from assistant.llm.guard import GuardReport, Passage, as_data, check_answer
from assistant.privacy import mask_personal_data

__all__ = ["LLMConfigError", "PhraseOutcome", "Phraser", "create_chat_model", "fill_template", "load_prompt"]

PASSAGE_MAX_CHARS = 1200
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def load_prompt(prompts_dir: Path, name: str) -> str:
    path = Path(prompts_dir) / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise LLMConfigError(f"プロンプトファイルがありません: {path}") from exc


def fill_template(template: str, **values: str) -> str:
    """Replace {name} placeholders in one pass; braces inside the values are left alone."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _window(text: str, quote: str) -> str:
    if len(text) <= PASSAGE_MAX_CHARS:
        return text
    start = max(0, text.find(quote) - PASSAGE_MAX_CHARS // 3) if quote in text else 0
    return text[start : start + PASSAGE_MAX_CHARS]


def render_sources(citations: list[dict[str, Any]]) -> str:
    lines = ["**出典**"]
    for number, c in enumerate(citations, start=1):
        mark = "（要確認）" if c["confidence"] == "要確認" else ""
        lines.append(f"[{number}] {c['title']}（{c['locator']}、{c['as_of']}時点、{c['confidence']}）{mark}")
    return "\n".join(lines)


@dataclass
class PhraseOutcome:
    text: str
    used_llm: bool
    backend: str
    report: GuardReport | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "used": self.used_llm,
            "guard": self.report.summary() if self.report else None,
            "error": self.error,
        }


class Phraser:
    def __init__(self, model: BaseChatModel, prompts_dir: Path, chunks_by_id: dict[str, Chunk], backend: str = "") -> None:
        self.model = model
        self.prompts_dir = Path(prompts_dir)
        self.chunks_by_id = chunks_by_id
        self.backend = backend or getattr(model, "_llm_type", "llm")

    @classmethod
    def from_settings(cls, settings: Any, chunks_by_id: dict[str, Chunk]) -> "Phraser | None":
        model = create_chat_model(settings)
        if model is None:
            return None
        return cls(model, settings.prompts_dir, chunks_by_id, settings.llm_backend)

    def passages(self, result: dict[str, Any]) -> list[Passage]:
        passages = []
        for number, citation in enumerate(result["citations"], start=1):
            chunk = self.chunks_by_id.get(citation["source_id"])
            text = chunk.text if chunk is not None else citation["quote"]
            passages.append(Passage(number, citation["source_id"], _window(text, citation["quote"]), citation["quote"]))
        return passages

    def build_messages(self, question: str, result: dict[str, Any], prompt: str = "answer") -> list[BaseMessage]:
        def data(text: str) -> str:
            return as_data(mask_personal_data(text)[0])

        blocks = []
        for passage, citation in zip(self.passages(result), result["citations"]):
            blocks.append(
                f'<passage n="{passage.number}" title="{data(citation["title"])}" as_of="{citation["as_of"]}" '
                f'confidence="{citation["confidence"]}">\n{data(passage.text)}\n</passage>'
            )
        draft = result["answer"].split("**出典**", 1)[0].strip()
        user = fill_template(
            load_prompt(self.prompts_dir, f"{prompt}_user"),
            question=data(question),
            passages="\n".join(blocks) or "（資料なし）",
            draft=data(draft),
        )
        return [SystemMessage(content=load_prompt(self.prompts_dir, f"{prompt}_system")), HumanMessage(content=user)]

    def phrase(self, question: str, result: dict[str, Any]) -> PhraseOutcome:
        """The model's answer when it passes the guard rails, else the composer's answer."""
        if not result["citations"]:
            return PhraseOutcome(result["answer"], False, self.backend, error="出典がないため言い換えを行いませんでした")
        messages = self.build_messages(question, result)
        try:
            reply = self.model.invoke(messages)
        except Exception as exc:  # noqa: BLE001 - any backend failure falls back to the composer
            return PhraseOutcome(result["answer"], False, self.backend, error=f"{type(exc).__name__}: {exc}")
        passages = self.passages(result)
        chunk_texts = {p.source_id: self.chunks_by_id[p.source_id].text for p in passages if p.source_id in self.chunks_by_id}
        report = check_answer(message_text(reply), passages, chunk_texts, question)
        if report.fallback:
            return PhraseOutcome(result["answer"], False, self.backend, report)
        return PhraseOutcome(self._assemble(report, result), True, self.backend, report)

    @staticmethod
    def _assemble(report: GuardReport, result: dict[str, Any]) -> str:
        citations = result["citations"]
        lines = ["**結論**"]
        for sentence in report.kept:
            numbers = [int(n) for n in re.findall(r"\[(\d{1,3})\]", sentence)]
            uncertain = any(citations[n - 1]["confidence"] == "要確認" for n in numbers)
            mark = "【要確認】" if uncertain and "【要確認】" not in sentence else ""
            bullet, body = (sentence[:2], sentence[2:]) if sentence.startswith("- ") else ("", sentence)
            lines.append(f"{bullet}{mark}{body}")
        if result.get("needs_clarification") and result.get("clarifying_question"):
            lines += ["", "**確認が必要な点**", f"- 確認させてください: {result['clarifying_question']}"]
        return "\n".join(lines) + "\n\n" + render_sources(citations)
