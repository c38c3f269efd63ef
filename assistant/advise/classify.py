"""Case-type advisor: which of the published case types fits an affair described in free text.

Evidence, strongest first: concept signatures (target group × kind of benefit, from
corpus/classifier.yaml), local names used in practice (case aliases), then BM25 and dense
similarity to each case's profile. Statutory affairs and affairs no case fits are recognised.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.chunk import Chunk
from assistant.citations import Citation, cite
from assistant.advise.matching import fold
from assistant.index.embeddings import Embedder
from assistant.index.lexical import LexicalIndex
from assistant.index.tokenizer import get_tokenizer
from assistant.knowledge import Knowledge
from assistant.knowledge.chunks import case_chunk
from assistant.knowledge.models import Case, StatutoryAffair

MAX_CANDIDATES = 5
ALIAS_MIN_CHARS = 3
NAME_SUFFIXES = ("又はこれらに類するその他の事務", "に関する事務", "の支給", "の実施")


@dataclass
class CaseCandidate:
    case: int
    name: str
    score: float
    reasons: list[str]
    citations: list[Citation]
    analogous_statutory_affair: str | None = None
    analogous_statutory_confidence: str | None = None
    confidence: str = "要確認"
    strong: bool = False  # concept-signature or local-name evidence, not only word similarity
    signature_terms: tuple[str, ...] = ()
    alias_terms: tuple[str, ...] = ()
    excluded_terms: tuple[str, ...] = ()
    statutory_boost: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "name": self.name,
            "score": round(self.score, 3),
            "reasons": self.reasons,
            "citations": [c.to_dict() for c in self.citations],
            "analogous_statutory_affair": self.analogous_statutory_affair,
            "analogous_statutory_confidence": self.analogous_statutory_confidence,
            "confidence": self.confidence,
            "strong": self.strong,
        }


@dataclass
class Classification:
    candidates: list[CaseCandidate]
    statutory: bool = False
    no_fit: bool = False
    ambiguous: bool = False
    clarifying_question: str | None = None
    statutory_affairs: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.to_dict() for c in self.candidates],
            "statutory": self.statutory,
            "no_fit": self.no_fit,
            "ambiguous": self.ambiguous,
            "clarifying_question": self.clarifying_question,
            "statutory_affairs": self.statutory_affairs,
            "notes": self.notes,
            "citations": [c.to_dict() for c in self.citations],
        }


@dataclass
class _Evidence:
    signature: float = 0.0
    signature_terms: list[str] = field(default_factory=list)
    alias: float = 0.0
    alias_terms: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    statutory_boost: float = 0.0
    lexical: float = 0.0
    dense: float = 0.0

    @property
    def total(self) -> float:
        penalty = 1.5 if self.excluded else 0.0
        return self.signature + self.alias + self.statutory_boost + 1.0 * self.lexical + 0.5 * self.dense - penalty

    @property
    def strong(self) -> bool:
        """Evidence beyond word similarity: a concept signature, a local name, or an own top-up of a named
        statutory affair."""
        return self.signature > 0 or self.alias > 0 or self.statutory_boost > 0


# A long run of kana with no kanji: a name written by its reading.
_KANA_RUN = re.compile(r"[ぁ-んァ-ンー]{8,}")
_WORD_CHARS = re.compile(r"[\u3400-\u9fff\u30a0-\u30ffa-z0-9々]")


_NATIONAL_LAW = re.compile(r"[一-龥ぁ-ん]{2,}法(第[0-9一二三四五六七八九十]+条)?(による|に基づく|の規定による|に規定する)")


def _at_boundary(folded: str, name: str, not_followed_by: tuple[str, ...]) -> bool:
    """The name occurs as the affair itself: not the tail of a longer word (心身障害児福祉手当 ≠
    障害児福祉手当), and not followed by a word that makes it something else (生活保護世帯: people;
    生活保護関係情報: a kind of information)."""
    start = folded.find(name)
    while start >= 0:
        after = folded[start + len(name) :]
        if (start == 0 or not _WORD_CHARS.match(folded[start - 1])) and not after.startswith(not_followed_by):
            return True
        start = folded.find(name, start + 1)
    return False


def _folded_terms(terms: list[str]) -> list[str]:
    return [t for t in dict.fromkeys(fold(term) for term in terms) if t]


def _present(folded_text: str, folded_terms: list[str]) -> list[str]:
    return [t for t in folded_terms if t in folded_text]


def _core_name(name: str) -> str:
    for suffix in NAME_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


class CaseClassifier:
    def __init__(self, knowledge: Knowledge, embedder: Embedder | None, chunks_by_id: Mapping[str, Chunk] | None = None) -> None:
        self.knowledge = knowledge
        self.cases: list[Case] = list(knowledge.cases.values())
        self.config = knowledge.classifier
        self.embedder = embedder
        self.chunks_by_id = chunks_by_id or {}
        # Vocabulary is folded once here; matching then compares folded strings only.
        self._aliases = {
            case.id: _folded_terms([a for a in {*case.aliases, _core_name(case.name)} if len(fold(a)) >= ALIAS_MIN_CHARS])
            for case in self.cases
        }
        self._signatures = {
            case_id: [([_folded_terms(group) for group in sig.all], sig.effective_weight) for sig in signatures]
            for case_id, signatures in self.config.signatures.items()
        }
        self._exclude = {case_id: _folded_terms(terms) for case_id, terms in self.config.exclude.items()}
        self._statutory_names = [
            (affair, sorted({fold(a) for a in {*affair.aliases, affair.name} if len(fold(a)) >= ALIAS_MIN_CHARS}))
            for affair in self.knowledge.statutory
        ]
        self._umbrella_terms = [(umbrella, fold(umbrella.term)) for umbrella in self.config.umbrellas]
        self._not_statutory_after = tuple(fold(w) for w in self.config.statutory_name_not_followed_by)
        self._profiles = [self._profile(case) for case in self.cases]
        tokenizer = get_tokenizer()
        self._bm25 = LexicalIndex.from_tokens([tokenizer.tokens(p) for p in self._profiles])
        self._profile_vectors = embedder.encode(self._profiles) if embedder is not None else None
        self._markers = [fold(m) for m in self.config.independent_markers]

    @staticmethod
    def _profile(case: Case) -> str:
        parts = [case.name, case.description, *case.aliases, *case.target_persons, *case.purpose_terms]
        parts += [case.benefit or "", *case.example_affairs]
        return "\n".join(parts)

    def case_chunk(self, case: Case) -> Chunk:
        """The indexed chunk of the case (the same rendering when no index is attached)."""
        return self.chunks_by_id.get(f"case-{case.id:02d}") or case_chunk(case)

    # -- evidence ---------------------------------------------------------------------------
    def _signature_evidence(self, folded: str, evidence: dict[int, _Evidence], signatures_by_case: dict | None = None) -> None:
        for case_id, signatures in (signatures_by_case or self._signatures).items():
            for groups, weight in signatures:
                matched: list[str] = []
                for group in groups:
                    hits = _present(folded, group)
                    if not hits:
                        break
                    matched.append(max(hits, key=len))
                else:
                    if weight > evidence[case_id].signature:
                        evidence[case_id].signature = weight
                        evidence[case_id].signature_terms = matched
        for case_id, terms in self._exclude.items():
            if evidence[case_id].signature > 0:
                evidence[case_id].excluded = _present(folded, terms)

    @functools.cached_property
    def _readings(self) -> tuple[dict[int, list], dict[int, list[str]]]:
        """Signatures and aliases as they are read (katakana), for input written in kana."""
        reading = get_tokenizer().reading
        signatures = {
            case_id: [([[reading(t) for t in group] for group in groups], weight) for groups, weight in items]
            for case_id, items in self._signatures.items()
        }
        aliases = {case_id: [reading(a) for a in items] for case_id, items in self._aliases.items()}
        return signatures, aliases

    def _kana_evidence(self, text: str, evidence: dict[int, _Evidence]) -> None:
        """Input written mostly in kana (じゅうどしんしんしょうがいしゃ…) is matched by reading."""
        if not _KANA_RUN.search(text):
            return
        read = get_tokenizer().reading(text)
        signatures, aliases = self._readings
        self._signature_evidence(read, evidence, signatures)
        self._alias_evidence(read, evidence, aliases)

    def _alias_evidence(self, folded: str, evidence: dict[int, _Evidence], aliases_by_case: dict | None = None) -> None:
        for case_id, aliases in (aliases_by_case or self._aliases).items():
            hits = _present(folded, aliases)
            if hits:
                longest = max(hits, key=len)
                evidence[case_id].alias = 1.0 + min(len(longest), 12) / 12
                evidence[case_id].alias_terms = sorted(hits, key=len, reverse=True)[:3]

    def _similarity_evidence(self, text: str, evidence: dict[int, _Evidence]) -> None:
        scores = self._bm25.get_scores(get_tokenizer().tokens(text))
        top = float(scores.max()) if scores.size else 0.0
        if top > 0:
            for case, score in zip(self.cases, scores):
                evidence[case.id].lexical = float(score) / top
        if self.embedder is not None and self._profile_vectors is not None:
            query = self.embedder.encode([text], is_query=True)[0]
            sims = self._profile_vectors @ query
            low, high = float(sims.min()), float(sims.max())
            for case, sim in zip(self.cases, sims):
                evidence[case.id].dense = (float(sim) - low) / ((high - low) or 1.0)

    def statutory_matches(self, folded: str) -> list[tuple[StatutoryAffair, list[str]]]:
        """Statutory affairs named in the text, with the names found at a word boundary."""
        matches = []
        for affair, names in self._statutory_names:
            found = [n for n in names if _at_boundary(folded, n, self._not_statutory_after)]
            if found:
                matches.append((affair, found))
        return matches

    @staticmethod
    def _case_terms_beyond(evidence: dict[int, "_Evidence"], names: list[str]) -> bool:
        """A specific case signature matched on words outside the statutory name (e.g. 実費 in
        予防接種の実費徴収): the text describes the municipality's own affair, not the statutory one."""
        for item in evidence.values():
            if item.signature >= 2.5 and any(not any(t in n for n in names) for t in item.signature_terms):
                return True
        return False

    def independent_markers(self, folded: str) -> list[str]:
        # 「独自利用事務」 names the topic of the question, not the affair's own-ness.
        text = re.sub(r"独自利用(事務)?", "", folded)
        return [m for m in self._markers if m in text]

    # -- decision ---------------------------------------------------------------------------
    def classify(self, text: str) -> Classification:
        folded = fold(text)
        evidence = {case.id: _Evidence() for case in self.cases}
        self._signature_evidence(folded, evidence)
        self._alias_evidence(folded, evidence)
        self._kana_evidence(text, evidence)
        self._similarity_evidence(text, evidence)
        statutory_matches = self.statutory_matches(folded)
        statutory_affairs = [affair for affair, _ in statutory_matches]
        matched_names = [name for _, names in statutory_matches for name in names]
        markers = self.independent_markers(folded)
        # A national law named as the basis (母子保健法による…) keeps a statutory reading even when
        # case words (母子) appear in the law's name.
        names_law = bool(_NATIONAL_LAW.search(folded))
        own_affair = bool(markers) or (not names_law and self._case_terms_beyond(evidence, matched_names))
        # A signature vetoed by an exclusion word (不妊 for a cat) is no evidence that a case fits.
        strongest_case_signal = max(
            ((0.0 if e.excluded else e.signature) + e.alias for e in evidence.values()), default=0.0
        )
        statutory = bool(statutory_affairs) and not own_affair
        if own_affair:
            for affair in statutory_affairs:
                for case_id in affair.related_cases:
                    evidence[case_id].statutory_boost = 1.5
        ranked = sorted(self.cases, key=lambda c: evidence[c.id].total, reverse=True)
        # Cases 3 and 4 share one seed entry: keep them together.
        ranked_ids = [c.id for c in ranked]
        umbrella = self._umbrella(folded, evidence)
        no_fit = not statutory and strongest_case_signal == 0 and umbrella is None
        candidates = [self._candidate(case, evidence[case.id], text) for case in ranked[:MAX_CANDIDATES]]
        result = Classification(candidates=candidates, statutory=statutory, no_fit=no_fit)
        if umbrella is not None:
            result.ambiguous = True
            result.clarifying_question = umbrella.question
            ordered = [self.knowledge.cases[c] for c in umbrella.cases]
            ordered.sort(key=lambda c: ranked_ids.index(c.id))
            result.candidates = [self._candidate(case, evidence[case.id], text) for case in ordered[:MAX_CANDIDATES]]
            result.notes.append(f"「{umbrella.term}」は対象者によって当てはまる事例が異なります。")
        if statutory_affairs:
            result.statutory_affairs = [
                {"id": a.id, "name": a.name, "linkage_basis": a.linkage_basis, "confidence": a.confidence}
                for a in statutory_affairs
            ]
            for affair in statutory_affairs:
                chunk = self.chunks_by_id.get(f"statutory-{affair.id}")
                if chunk is not None:
                    result.citations.append(cite(chunk, ["情報連携の根拠", affair.aliases[0]]))
        if statutory:
            result.notes.append("法定事務のため、独自利用事務の情報連携の届出は不要です（法定事務としての情報連携の根拠は下記）。")
        if no_fit:
            result.notes.append(
                "公表されている事例のいずれにも明確には当てはまりません。事例は毎年追加されることがあるため、"
                "個人情報保護委員会事務局への事前相談をお勧めします。"
            )
        self._scale_scores(result.candidates)
        return result

    def _umbrella(self, folded: str, evidence: dict[int, _Evidence]):  # noqa: ANN202
        for umbrella, term in self._umbrella_terms:
            if term not in folded:
                continue
            # A case is singled out by words beyond the umbrella name itself (its target group, its benefit).
            specific = [c for c in umbrella.cases if any(term not in t for t in evidence[c].signature_terms)]
            if not specific:
                return umbrella
        return None

    def _candidate(self, case: Case, evidence: _Evidence, text: str) -> CaseCandidate:
        reasons: list[str] = []
        needles: list[str] = []
        if evidence.signature_terms:
            terms = "」「".join(evidence.signature_terms)
            reasons.append(f"「{terms}」が、この事例の対象者・給付内容に当たります")
            needles += evidence.signature_terms
        if evidence.alias_terms:
            reasons.append(f"実務上の呼び方「{evidence.alias_terms[0]}」に一致します")
            needles += evidence.alias_terms
        if evidence.statutory_boost:
            reasons.append("法定事務に市町村が独自に上乗せ・拡大する事務と読めます")
        if evidence.excluded:
            reasons.append(f"ただし「{'」「'.join(evidence.excluded)}」は別の事例を示す語です")
        if not reasons:
            reasons.append("事例の説明・事務名の例との語句の類似によります（一致する語は限られます）")
        if case.analogous_statutory_affair:
            reasons.append(
                f"準ずる法定事務: {case.analogous_statutory_affair}（{case.analogous_statutory_confidence or case.confidence}）"
            )
        chunk = self.case_chunk(case)
        citations = [cite(chunk, needles)]
        if case.analogous_statutory_affair:
            statutory_quote = cite(chunk, ["準ずる法定事務"])
            if statutory_quote.quote != citations[0].quote:
                citations.append(statutory_quote)
        return CaseCandidate(
            case=case.id,
            name=case.name,
            score=evidence.total,
            reasons=reasons,
            citations=citations,
            analogous_statutory_affair=case.analogous_statutory_affair,
            analogous_statutory_confidence=case.analogous_statutory_confidence or case.confidence,
            confidence=case.confidence,
            strong=evidence.strong and not evidence.excluded,
            signature_terms=tuple(evidence.signature_terms),
            alias_terms=tuple(evidence.alias_terms),
            excluded_terms=tuple(evidence.excluded),
            statutory_boost=bool(evidence.statutory_boost),
        )

    def strong_evidence(self, text: str) -> tuple[tuple[int, ...], bool]:
        """Cases with concept-signature or local-name evidence (strongest first) and whether a statutory affair
        is named: the cheap check used to find where a message names an affair."""
        folded = fold(text)
        evidence = {case.id: _Evidence() for case in self.cases}
        self._signature_evidence(folded, evidence)
        self._alias_evidence(folded, evidence)
        self._kana_evidence(text, evidence)
        strong = [(e.signature + e.alias, case_id) for case_id, e in evidence.items() if e.strong and not e.excluded]
        strong.sort(reverse=True)
        return tuple(case_id for _, case_id in strong), bool(self.statutory_matches(folded))

    @staticmethod
    def _scale_scores(candidates: list[CaseCandidate]) -> None:
        """Map raw evidence to 0–1: a logistic on the raw score, so strong matches approach 1."""
        for candidate in candidates:
            candidate.score = 1.0 / (1.0 + math.exp(-(candidate.score - 2.5)))
