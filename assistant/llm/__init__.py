"""Optional LLM phrasing of an answer from the same retrieved passages, behind guard rails.

The composer's result (its citations and their chunks) is the only material the model sees, and
every text put into the prompt passes the masker of personal data first. The model's text is checked sentence by sentence (assistant.llm.guard); when too little survives, the
composer's own answer is used instead. Prompts are files in `settings.prompts_dir`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.answer.model import Answer
from assistant.answer.render import SourceEntry, facts_for_prompt, source_entries, to_markdown
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
    """Phrases an answer object with an LLM: the model sees the answer's statements and their cited passages
    only, and every sentence it writes is checked against them (assistant.llm.guard)."""

    def __init__(self, model: BaseChatModel, prompts_dir: Path, chunks_by_id: Mapping[str, Chunk], backend: str = "") -> None:
        self.model = model
        self.prompts_dir = Path(prompts_dir)
        self.chunks_by_id = chunks_by_id
        self.backend = backend or getattr(model, "_llm_type", "llm")

    @classmethod
    def from_settings(cls, settings: Any, chunks_by_id: Mapping[str, Chunk]) -> "Phraser | None":
        model = create_chat_model(settings)
        if model is None:
            return None
        return cls(model, settings.prompts_dir, chunks_by_id, settings.llm_backend)

    def _entry_texts(self, answer: Answer, entry: SourceEntry) -> list[str]:
        texts = []
        for index in entry.citations:
            citation = answer.citations[index]
            chunk = self.chunks_by_id.get(citation.source_id)
            text = _window(chunk.text, citation.quote) if chunk is not None else citation.quote
            if text not in texts:
                texts.append(text)
        return texts

    def _indexed_text(self, answer: Answer, entry: SourceEntry) -> str:
        ids = dict.fromkeys(answer.citations[i].source_id for i in entry.citations)
        return "\n".join(self.chunks_by_id[i].text for i in ids if i in self.chunks_by_id)

    def passages(self, answer: Answer) -> list[Passage]:
        """One passage per entry of the answer's source list, numbered as the reader sees them."""
        passages = []
        for entry in source_entries(answer):
            first = answer.citations[entry.citations[0]]
            passages.append(Passage(entry.number, first.source_id, "\n".join(self._entry_texts(answer, entry)), first.quote))
        return passages

    def build_messages(self, question: str, answer: Answer, prompt: str = "answer") -> list[BaseMessage]:
        def data(text: str) -> str:  # nothing personal reaches the model, and no text can close a data block
            return as_data(mask_personal_data(text)[0])

        blocks = []
        for entry, passage in zip(source_entries(answer), self.passages(answer)):
            confidence = "要確認" if entry.uncertain else "確認済み"
            blocks.append(
                f'<passage n="{entry.number}" title="{data(entry.label)}" as_of="{entry.as_of}" confidence="{confidence}">\n'
                f"{data(passage.text)}\n</passage>"
            )
        user = fill_template(
            load_prompt(self.prompts_dir, f"{prompt}_user"),
            question=data(question),
            passages="\n".join(blocks) or "（資料なし）",
            draft=data(facts_for_prompt(answer)),
        )
        return [SystemMessage(content=load_prompt(self.prompts_dir, f"{prompt}_system")), HumanMessage(content=user)]

    def phrase(self, question: str, answer: Answer) -> PhraseOutcome:
        """The model's answer when it passes the guard rails, else the composer's answer."""
        if not answer.citations:
            return self._unphrased(answer)
        try:
            reply = self.model.invoke(self.build_messages(question, answer))
        except Exception as exc:  # noqa: BLE001 - any backend failure falls back to the composer
            return PhraseOutcome(to_markdown(answer), False, self.backend, error=f"{type(exc).__name__}: {exc}")
        return self._checked(message_text(reply), question, answer)

    def stream(self, question: str, answer: Answer) -> Iterator[str | PhraseOutcome]:
        """The model's text piece by piece as the model writes it, then the outcome of the guard rails.

        The guard reads the whole text once it is complete; the outcome's text is what the reader keeps
        (the streamed text when every sentence passed, else the guarded or the composer's answer)."""
        if not answer.citations:
            yield self._unphrased(answer)
            return
        pieces: list[str] = []
        try:
            for chunk in self.model.stream(self.build_messages(question, answer)):
                piece = message_text(chunk)
                if piece:
                    pieces.append(piece)
                    yield piece
        except Exception as exc:  # noqa: BLE001 - a failure mid-stream falls back to the composer
            yield PhraseOutcome(to_markdown(answer), False, self.backend, error=f"{type(exc).__name__}: {exc}")
            return
        yield self._checked("".join(pieces), question, answer)

    def _unphrased(self, answer: Answer) -> PhraseOutcome:
        return PhraseOutcome(to_markdown(answer), False, self.backend, error="出典がないため言い換えを行いませんでした")

    def _checked(self, text: str, question: str, answer: Answer) -> PhraseOutcome:
        passages = self.passages(answer)
        entries = {e.number: e for e in source_entries(answer)}
        # The guard checks each sentence against the whole indexed text of the chunks its number stands for.
        chunk_texts = {p.source_id: self._indexed_text(answer, entries[p.number]) for p in passages}
        report = check_answer(text, passages, chunk_texts, question)
        if report.fallback:
            return PhraseOutcome(to_markdown(answer), False, self.backend, report)
        return PhraseOutcome(self._assemble(report, answer), True, self.backend, report)

    @staticmethod
    def _assemble(report: GuardReport, answer: Answer) -> str:
        entries = {e.number: e for e in source_entries(answer)}
        lines = []
        for sentence in report.kept:
            numbers = [int(n) for n in re.findall(r"\[(\d{1,3})\]", sentence)]
            uncertain = any(entries[n].partly_uncertain for n in numbers if n in entries)
            mark = "【要確認】" if uncertain and "【要確認】" not in sentence else ""
            bullet, body = (sentence[:2], sentence[2:]) if sentence.startswith("- ") else ("", sentence)
            lines.append(f"{bullet}{mark}{body}")
        if answer.clarifying_question:
            lines += ["", f"**確認させてください:** {answer.clarifying_question}"]
        sources = [f"[{e.number}] {e.text()}" for e in entries.values()]
        return "\n".join(lines) + "\n\n**出典**\n" + "\n".join(sources)
