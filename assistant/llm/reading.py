"""An optional LLM fills the same typed reading as the learned reader (structured output, validated).

The learned reader stays the default and the fallback: a reply that is not valid JSON, names a label that does
not exist, or a backend that fails gives the learned reader's reading. The affairs a message names and its
references to earlier affairs are always found by the case classifier, not by the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.llm import fill_template, load_prompt
from assistant.llm.backends import message_text
from assistant.llm.guard import as_data
from assistant.privacy import mask_personal_data
from assistant.understand.reader import Reader
from assistant.understand.reading import NotificationFacts, Reading

_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class ModelReading(BaseModel):
    model_config = ConfigDict(extra="ignore")

    intents: list[str] = Field(min_length=1)
    existing: Literal["yes", "no"] | None = None
    changes: list[str] = Field(default_factory=list)
    unpromulgated: bool = False
    polarity: Literal["yes", "no", "unsure"] | None = None
    asker: Literal["staff", "helpdesk"] = "staff"


class LLMReader:
    """Reads with the model when it answers within the schema, else with the learned reader."""

    def __init__(self, chat_model: BaseChatModel, prompts_dir: Path, learned: Reader, backend: str = "") -> None:
        self.chat_model = chat_model
        self.prompts_dir = Path(prompts_dir)
        self.learned = learned
        self.backend = backend or getattr(chat_model, "_llm_type", "llm")
        self.last_error: str | None = None
        # What the answer step uses besides read(): the learned reader's own parts.
        self.model_labels = learned.model.labels
        self.vocabulary = learned.vocabulary
        self.mention = learned.mention

    @property
    def model(self):  # noqa: ANN201 - the learned model (its labels, and Q&A readings in the planner)
        return self.learned.model

    def _messages(self, text: str) -> list:
        labels = self.model_labels
        user = fill_template(
            load_prompt(self.prompts_dir, "reader_user"),
            intents="\n".join(f"- {key}: {name}" for key, name in labels.intents.items()),
            changes="\n".join(f"- {key}: {name}" for key, name in labels.changes.items()),
            message=as_data(mask_personal_data(text)[0]),
        )
        return [SystemMessage(content=load_prompt(self.prompts_dir, "reader_system")), HumanMessage(content=user)]

    def parse(self, reply: str) -> ModelReading:
        """The model's JSON, validated against the schema and the label set (ValueError otherwise)."""
        match = _JSON_OBJECT.search(reply)
        if match is None:
            raise ValueError("JSON がありません")
        try:
            parsed = ModelReading.model_validate(json.loads(match.group(0)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"形式が違います（{exc}）") from exc
        labels = self.model_labels
        unknown = [i for i in parsed.intents if i not in labels.intents] + [c for c in parsed.changes if c not in labels.changes]
        if unknown:
            raise ValueError(f"未定義のラベル {', '.join(unknown)}")
        return parsed

    def read(self, text: str) -> Reading:
        learned = self.learned.read(text)
        try:
            parsed = self.parse(message_text(self.chat_model.invoke(self._messages(text))))
        except Exception as exc:  # noqa: BLE001 - any failure of the model falls back to the learned reading
            self.last_error = f"{type(exc).__name__}: {exc}"
            return learned
        self.last_error = None
        facts = NotificationFacts(parsed.existing, frozenset(parsed.changes), parsed.unpromulgated)
        return replace(learned, intents=tuple(dict.fromkeys(parsed.intents)), facts=facts, polarity=parsed.polarity,
                       asker=parsed.asker, source=self.backend)
