"""The reader's labelled utterances (corpus/reader/*.jsonl) and its label set (corpus/reader/labels.yaml)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from assistant.yamlio import load_yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

READER_DIR = "reader"
LABELS_FILE = "labels.yaml"


class ReaderDataError(ValueError):
    """The reader's training data or label set is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelSet:
    intents: dict[str, str]
    changes: dict[str, str]
    existing: dict[str, str]
    polarity: dict[str, str]
    asker: dict[str, str]


class Utterance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)
    intents: tuple[str, ...] = Field(min_length=1)
    existing: Literal["yes", "no"] | None = None
    changes: tuple[str, ...] = ()
    unpromulgated: bool = False
    polarity: Literal["yes", "no", "unsure"] | None = None
    asker: Literal["staff", "helpdesk"] = "staff"
    voice: str | None = None

    @field_validator("intents", "changes")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))


def reader_dir(corpus_dir: Path) -> Path:
    return corpus_dir / READER_DIR


def load_labels(corpus_dir: Path) -> LabelSet:
    path = reader_dir(corpus_dir) / LABELS_FILE
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
        return LabelSet(**{key: {str(k): str(v) for k, v in data[key].items()} for key in LabelSet.__dataclass_fields__})
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ReaderDataError(f"{path}: ラベル定義を読み込めません（{exc}）") from exc


def utterance_files(corpus_dir: Path) -> list[Path]:
    return sorted(reader_dir(corpus_dir).glob("*.jsonl"))


def load_utterances(corpus_dir: Path, labels: LabelSet | None = None) -> list[Utterance]:
    labels = labels or load_labels(corpus_dir)
    out: list[Utterance] = []
    for path in utterance_files(corpus_dir):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = Utterance.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise ReaderDataError(f"{path.name} {number}行目: {exc}") from exc
            unknown = [i for i in item.intents if i not in labels.intents] + [c for c in item.changes if c not in labels.changes]
            if unknown:
                raise ReaderDataError(f"{path.name} {number}行目: 未定義のラベル {', '.join(unknown)}")
            out.append(item)
    if not out:
        raise ReaderDataError(f"{reader_dir(corpus_dir)}: 学習データ（*.jsonl）がありません")
    return out


def data_fingerprint(corpus_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in [reader_dir(corpus_dir) / LABELS_FILE, *utterance_files(corpus_dir)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
