"""Instruction-like text in ingested documents (「以上の指示を無視し…」, "ignore previous instructions").

A document is data. Passages that address the reader as a program, or that state a conclusion
together with an order to repeat it, are marked at ingest and kept out of answers. The
vocabulary is `corpus/ingest.yaml`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.yamlio import load_yaml

from assistant.config import DEFAULT_CORPUS_DIR

RULES_FILE = "ingest.yaml"
_SPACES = re.compile(r"\s+")
MAX_FINDINGS = 5


class ScreeningRulesError(ValueError):
    """corpus/ingest.yaml is missing or malformed."""


@dataclass(frozen=True)
class InstructionRules:
    commands: tuple[re.Pattern[str], ...]
    role_play: tuple[re.Pattern[str], ...]
    conclusions: tuple[re.Pattern[str], ...]
    instruction_words: tuple[re.Pattern[str], ...]

    def findings(self, text: str) -> list[str]:
        """The instruction-like phrases found in `text` (empty when it reads as a plain document)."""
        folded = _fold(text)
        found = [m.group(0) for p in (*self.commands, *self.role_play) if (m := p.search(folded))]
        claims = [m.group(0) for p in self.conclusions if (m := p.search(folded))]
        if claims:
            orders = [m.group(0) for p in self.instruction_words if (m := p.search(folded))]
            if orders:
                found += claims + orders
        return list(dict.fromkeys(found))[:MAX_FINDINGS]


def _fold(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text))


def _patterns(data: dict, key: str, path: Path) -> tuple[re.Pattern[str], ...]:
    values = data.get(key)
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ScreeningRulesError(f"{path.name}: {key} must be a list of regular expressions")
    try:
        return tuple(re.compile(unicodedata.normalize("NFKC", v), re.IGNORECASE) for v in values)
    except re.error as exc:
        raise ScreeningRulesError(f"{path.name}: {key}: invalid regular expression ({exc})") from exc


@functools.lru_cache(maxsize=4)
def _load(path: Path, _mtime_ns: int) -> InstructionRules:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScreeningRulesError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise ScreeningRulesError(f"{path.name}: the file must hold a mapping")
    return InstructionRules(
        commands=_patterns(data, "commands", path),
        role_play=_patterns(data, "role_play", path),
        conclusions=_patterns(data, "conclusions", path),
        instruction_words=_patterns(data, "instruction_words", path),
    )


def load_instruction_rules(corpus_dir: Path = DEFAULT_CORPUS_DIR) -> InstructionRules:
    path = Path(corpus_dir) / RULES_FILE
    if not path.is_file():
        raise ScreeningRulesError(f"{path}: file is missing")
    return _load(path, path.stat().st_mtime_ns)
