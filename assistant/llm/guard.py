"""Guard rails for model-written answers: every sentence cited, every fact found in its passages.

A sentence is kept only when
- it carries at least one citation [n] and every n names a passage that was given to the model,
- the quote of each cited passage is verbatim in the indexed chunk (the citation is real),
- each number, date, article number, phone number, e-mail address, URL and 「quoted phrase」 in it
  appears in the passages it cites (or in the question the user asked); phone and 12-digit numbers are
  found with the masker's own patterns (assistant.privacy) and compared digit by digit, so a number
  written in another notation still counts as the same number,
- no name or labelled personal value in it is missing from those passages,
- most of its content words come from the passages it cites, and
- it does not obey or echo an instruction (text inside documents is data, not a command).
Sentences that fail are removed; when too little survives, the caller falls back to the LLM-free
composer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from assistant.privacy import EMAIL_PATTERN, find_numbers, find_personal_data, kind_label, mask_personal_data
from assistant.textnorm import normalize

CITATION = re.compile(r"\[(\d{1,3})\]")
SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
HEADINGS = {"結論", "理由", "根拠", "理由・根拠", "確認が必要な点", "出典", "回答", "今後の手続", "確認させていただきたい事項"}
MIN_SUPPORT = 0.5
MAX_REMOVED_SHARE = 0.5

URL = re.compile(r"https?://[^\s)）」]+|www\.[^\s)）」]+")
KANJI_NUMBER = r"[〇一二三四五六七八九十百千万]+"
ARTICLE = re.compile(rf"第{KANJI_NUMBER}(条|項|号)(の{KANJI_NUMBER})?")
ERA_DATE = re.compile(rf"(令和|平成|昭和)(元|{KANJI_NUMBER})年")
DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
QUOTED = re.compile(r"「([^」]{2,80})」")
INSTRUCTION = re.compile(
    r"(以前|前|上記|これまで|すべて|全て)の(指示|命令|ルール|規則|制約)を?(無視|忘れ|破棄)|指示を無視|命令を無視|"
    r"ignore\s+(all\s+|the\s+)?(previous|prior|above)|disregard\s+(all\s+|the\s+)?(previous|prior|instructions)|"
    r"system\s*prompt|システムプロンプト|プロンプトを(表示|出力|開示)|あなたは今から|you are now|"
    r"(命令|指示)に従(い|って|います)|jailbreak|developer mode|開発者モード",
    re.IGNORECASE,
)
_CONTENT_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u30a0-\u30ffA-Za-z0-9々〆ー]+")


@dataclass(frozen=True)
class Passage:
    """A numbered passage as shown to the model; `quote` is its citation's verbatim quote."""

    number: int
    source_id: str
    text: str
    quote: str = ""


@dataclass
class SentenceVerdict:
    sentence: str
    ok: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class GuardReport:
    verdicts: list[SentenceVerdict]
    fallback: bool
    text: str

    @property
    def kept(self) -> list[str]:
        return [v.sentence for v in self.verdicts if v.ok]

    @property
    def removed(self) -> list[SentenceVerdict]:
        return [v for v in self.verdicts if not v.ok]

    def summary(self) -> dict[str, object]:
        """What was removed and why, masked: the summary is stored with the answer."""
        return {
            "kept": len(self.kept),
            "removed": [
                {"sentence": mask_personal_data(v.sentence)[0], "reasons": [mask_personal_data(r)[0] for r in v.reasons]}
                for v in self.removed
            ],
            "fallback": self.fallback,
        }


def _fold(text: str) -> str:
    return normalize(unicodedata.normalize("NFKC", text))


def split_sentences(text: str) -> list[str]:
    """Sentences of a model answer; a citation that follows the full stop stays with its sentence."""
    text = re.sub(r"([。！？!?])[ \t\u3000]*((?:\[\d{1,3}\][ \t\u3000]*)+)", lambda m: m.group(2).strip() + m.group(1), text)
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def _plain(sentence: str) -> str:
    text = CITATION.sub("", sentence).replace("**", "").replace("【要確認】", "")
    return re.sub(r"^\s*(?:[-*・●■]|\d+[.)])\s*", "", text).strip()


def is_heading(sentence: str) -> bool:
    return _plain(sentence).strip("#：: ") in HEADINGS


def _bigrams(text: str) -> set[str]:
    grams: set[str] = set()
    for run in _CONTENT_RUN.findall(text):
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def support(sentence: str, evidence: str) -> float:
    """Share of the sentence's content bigrams (kanji, katakana, alphanumerics) found in the evidence."""
    grams = _bigrams(_fold(_plain(sentence)))
    if not grams:
        return 1.0
    return len(grams & _bigrams(evidence)) / len(grams)


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return text


def fact_tokens(sentence: str) -> list[str]:
    """Numbers, dates, article numbers, phone numbers, URLs and e-mail addresses a sentence states."""
    text = _fold(CITATION.sub("", sentence))
    tokens: list[str] = []
    for pattern in (URL, EMAIL_PATTERN):
        tokens += [m.group(0) for m in pattern.finditer(text)]
        text = pattern.sub(" ", text)
    numbers = find_numbers(text)
    tokens += [text[n.start : n.end] for n in numbers]
    text = _blank(text, [(n.start, n.end) for n in numbers])
    for pattern in (ARTICLE, ERA_DATE):
        tokens += [m.group(0) for m in pattern.finditer(text)]
        text = pattern.sub(" ", text)
    tokens.extend(DIGITS.findall(text))
    return tokens


def _present(token: str, evidence: str) -> bool:
    if token.replace(".", "").replace(",", "").isdigit() and not find_numbers(token):
        return re.search(rf"(?<![\d.,]){re.escape(token)}(?![\d])", evidence) is not None
    stated = {n.digits for n in find_numbers(token)}
    if stated:  # a phone or 12-digit number: the same digits in any notation
        return stated <= {n.digits for n in find_numbers(evidence)}
    return token in evidence


def personal_data_reasons(sentence: str, allowed: str) -> list[str]:
    """Names and labelled personal values in a sentence that its evidence does not contain."""
    reasons = []
    for finding in find_personal_data(_fold(CITATION.sub("", sentence))):
        if finding.kind in ("name", "labelled") and finding.text not in allowed:
            reasons.append(f"出典にない個人情報（{kind_label(finding.kind)}）")
    return list(dict.fromkeys(reasons))


def check_sentence(sentence: str, passages: dict[int, Passage], chunk_texts: dict[str, str], question: str) -> SentenceVerdict:
    reasons: list[str] = []
    numbers = [int(n) for n in CITATION.findall(sentence)]
    if not numbers:
        return SentenceVerdict(sentence, False, ["出典番号がありません"])
    unknown = [n for n in numbers if n not in passages]
    if unknown:
        return SentenceVerdict(sentence, False, [f"存在しない出典番号 [{n}]" for n in unknown])
    cited = [passages[n] for n in dict.fromkeys(numbers)]
    for passage in cited:
        chunk_text = chunk_texts.get(passage.source_id)
        if chunk_text is None or (passage.quote and passage.quote not in chunk_text):
            reasons.append(f"出典 [{passage.number}] の引用が索引の本文にありません")
    evidence = _fold("\n".join(chunk_texts.get(p.source_id, p.text) for p in cited))
    allowed = evidence + "\n" + _fold(question)
    for token in fact_tokens(sentence):
        if not _present(token, allowed):
            reasons.append(f"出典にない事実「{token}」")
    reasons += personal_data_reasons(sentence, allowed)
    for quoted in QUOTED.findall(_fold(CITATION.sub("", sentence))):
        if quoted not in allowed:
            reasons.append(f"出典にない引用「{quoted}」")
    if INSTRUCTION.search(sentence):
        reasons.append("文書中の指示に従った、または指示を含む文です")
    score = support(sentence, evidence)
    if score < MIN_SUPPORT:
        reasons.append(f"出典との一致が少なすぎます（{score:.0%}）")
    return SentenceVerdict(sentence, not reasons, reasons)


def check_answer(text: str, passages: list[Passage], chunk_texts: dict[str, str], question: str = "") -> GuardReport:
    """Check every sentence of a model answer; the text keeps the sentences that passed."""
    by_number = {p.number: p for p in passages}
    verdicts: list[SentenceVerdict] = []
    lines: list[str] = []
    for sentence in split_sentences(text):
        if is_heading(sentence):
            continue
        verdict = check_sentence(sentence, by_number, chunk_texts, question)
        verdicts.append(verdict)
        if verdict.ok:
            lines.append(sentence)
    kept = sum(1 for v in verdicts if v.ok)
    removed = len(verdicts) - kept
    fallback = kept == 0 or removed / max(len(verdicts), 1) > MAX_REMOVED_SHARE
    return GuardReport(verdicts, fallback, "" if fallback else "\n".join(lines))


DELIMITER = re.compile(r"</?\s*(passage|passages|message|system|user|assistant|instructions?)[^>]*>", re.IGNORECASE)


def as_data(text: str) -> str:
    """Passage text made safe to embed between data delimiters: it cannot close or open a block."""
    return DELIMITER.sub(lambda m: m.group(0).replace("<", "＜").replace(">", "＞"), text)


def instruction_lines(text: str) -> list[str]:
    """Lines of a document that read like instructions to a model (reported, never obeyed)."""
    return [line for line in text.split("\n") if INSTRUCTION.search(line)]
