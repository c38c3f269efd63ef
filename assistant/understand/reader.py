"""Reading a message: the learned model's labels, the affairs the message names, references to earlier affairs."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING


from assistant.yamlio import load_yaml

from assistant.advise.matching import fold
from assistant.understand.model import INTENT_THRESHOLD, Prediction, ReaderModel
from assistant.understand.reading import AffairMention, NotificationFacts, Reading

if TYPE_CHECKING:
    from assistant.advise.classify import CaseClassifier

VOCABULARY_FILE = "reader/vocabulary.yaml"
# Questions about which affair a message names: only they make an affair that fits no case worth recording.
AFFAIR_INTENTS = frozenset({"case_fit", "statutory"})
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
_CLAUSE_END = re.compile(r"(?<=[、，,])")


@dataclass(frozen=True)
class ReaderVocabulary:
    first: tuple[str, ...]
    last: tuple[str, ...]
    listing: tuple[str, ...] = ()
    affair_name_endings: tuple[str, ...] = ()
    coordinators: tuple[str, ...] = ()
    notification_names: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def load(cls, corpus_dir: Path) -> "ReaderVocabulary":
        data = load_yaml((corpus_dir / VOCABULARY_FILE).read_text(encoding="utf-8")) or {}
        references = data.get("references", {})
        return cls(
            tuple(fold(w) for w in references.get("first", [])),
            tuple(fold(w) for w in references.get("last", [])),
            tuple(fold(w) for w in data.get("listing", [])),
            tuple(sorted(data.get("affair_name_endings", []), key=len, reverse=True)),
            tuple(sorted(data.get("coordinators", []), key=len, reverse=True)),
            tuple((code, tuple(fold(n) for n in names)) for code, names in (data.get("notification_names") or {}).items()),
        )

    def named_notification_types(self, text: str) -> list[str]:
        folded = fold(text)
        return [code for code, names in self.notification_names if any(n in folded for n in names)]

    def asks_for_listing(self, text: str) -> bool:
        folded = fold(text)
        return any(word in folded for word in self.listing)

    def affair_name(self, text: str) -> str:
        """The affair as the user named it: the first sentence up to the last affair-name ending in it."""
        first = re.split(r"[。？?！!\n]", text.strip(), maxsplit=1)[0]
        best = ""
        for clause in re.split(r"[、，,\s「」（）()『』]", first):
            for ending in self.affair_name_endings:
                end = clause.rfind(ending)
                if end >= 0 and len(clause[: end + len(ending)]) > len(ending):
                    candidate = clause[: end + len(ending)]
                    best = candidate if len(candidate) > len(best) else best
                    break
        return best[-30:]

    def reference(self, folded: str) -> int | None:
        if any(word in folded for word in self.first):
            return 0
        if any(word in folded for word in self.last):
            return -1
        return None


class Reader:
    def __init__(self, model: ReaderModel, classifier: "CaseClassifier", vocabulary: ReaderVocabulary,
                 domain_words: frozenset[str] = frozenset()) -> None:
        self.model = model
        self.classifier = classifier
        self.vocabulary = vocabulary
        self.domain_words = domain_words  # every word of the indexed material

    def in_domain(self, text: str) -> bool:
        """Whether any word of the message occurs in the indexed material (unknown when no vocabulary is given)."""
        if not self.domain_words:
            return True
        from assistant.index.tokenizer import get_tokenizer

        words = [form for form, _parts in get_tokenizer().morphemes(text) if len(form) > 1]
        return any(word in self.domain_words for word in words)

    def read(self, text: str) -> Reading:
        prediction = self.model.predict(text)
        reading = self.reading_from(text, prediction)
        sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
        if len(sentences) > 1 and not any(a.facts for a in reading.affairs):
            reading = replace(reading, facts=self.facts_of_sentences(sentences, prediction))
        return reading

    def facts_of_sentences(self, sentences: list[str], whole: Prediction) -> NotificationFacts:
        """Facts are stated clause by clause: each sentence is read for them, so that what one sentence says
        (「まだ届出していません」) is not outweighed by the rest of a long message."""
        parts = self.model.predict_many(sentences)
        stated = [p.existing for p in parts if p.existing[0] != "none"]
        existing = max(stated, key=lambda pair: pair[1])[0] if stated else None
        changes = frozenset(c for p in parts for c in p.chosen_changes())
        unpromulgated = any(p.unpromulgated >= 0.5 for p in parts) or whole.unpromulgated >= 0.5
        return NotificationFacts(existing=existing, changes=changes, unpromulgated=unpromulgated)  # type: ignore[arg-type]

    @staticmethod
    def facts_of(prediction: Prediction) -> NotificationFacts:
        existing = prediction.existing[0]
        return NotificationFacts(
            existing=None if existing == "none" else existing,  # type: ignore[arg-type]
            changes=frozenset(prediction.chosen_changes()),
            unpromulgated=prediction.unpromulgated >= 0.5,
        )

    def reading_from(self, text: str, prediction: Prediction, *, source: str = "model") -> Reading:
        intents = prediction.chosen_intents()
        # The model knows only the topics it was shown: a message it is unsure of, in words that occur nowhere
        # in the indexed material, is about something else.
        if prediction.intents[0][1] < INTENT_THRESHOLD and not self.in_domain(text):
            intents = ["out_of_scope"]
        polarity = prediction.polarity[0]
        affairs = self.affairs(text, asks_about_affair=bool(AFFAIR_INTENTS & set(intents)))
        if len(affairs) > 1:  # each affair gets the facts its own part of the message states
            parts = self.model.predict_many([a.text for a in affairs])
            affairs = [replace(a, facts=self.facts_of(p)) for a, p in zip(affairs, parts)]
        return Reading(
            text=text,
            intents=tuple(intents),
            scores=dict(prediction.intents),
            facts=self.facts_of(prediction),
            polarity=None if polarity == "none" else polarity,  # type: ignore[arg-type]
            asker=prediction.asker[0],  # type: ignore[arg-type]
            affairs=tuple(affairs),
            reference=self.vocabulary.reference(fold(text)),
            source=source,
        )

    # -- affairs ----------------------------------------------------------------------------------
    def affairs(self, text: str, *, asks_about_affair: bool = False) -> list[AffairMention]:
        """One mention per affair the text names: clauses are grouped by the case their strong evidence points to."""
        groups: list[tuple[str, tuple[int, ...], bool]] = []  # (text, strong cases, statutory)
        for sentence in (s for s in _SENTENCE_END.split(text) if s.strip()):
            for clause in (c for part in _CLAUSE_END.split(sentence) if part.strip() for c in self._coordinated(part)):
                cases, statutory = self.classifier.strong_evidence(clause)
                if groups and (not cases and not statutory or (cases and cases[0] in groups[-1][1])):
                    last_text, last_cases, last_statutory = groups[-1]
                    groups[-1] = (last_text + clause, last_cases or cases, last_statutory or statutory)
                elif cases or statutory:
                    groups.append((clause, cases, statutory))
                else:
                    groups.append((clause, (), False))
        named = [g for g in groups if g[1] or g[2]]
        if len(named) <= 1:
            return self._single(text, asks_about_affair)
        return [self._mention(g_text) for g_text, _, _ in self._merge_leading(groups)]

    def _coordinated(self, clause: str) -> list[str]:
        """A clause that names two affairs joined by と・及び… is cut between them (else kept whole)."""
        cases, _statutory = self.classifier.strong_evidence(clause)
        if len(cases) < 2 or not self.vocabulary.coordinators:
            return [clause]
        pattern = "|".join(re.escape(c) for c in self.vocabulary.coordinators)
        for match in re.finditer(pattern, clause):
            head, tail = clause[: match.end()], clause[match.end():]
            head_cases, _ = self.classifier.strong_evidence(head)
            tail_cases, _ = self.classifier.strong_evidence(tail)
            if head_cases and tail_cases and head_cases[0] != tail_cases[0]:
                return [head, tail]
        return [clause]

    @staticmethod
    def _merge_leading(groups: list[tuple[str, tuple[int, ...], bool]]) -> list[tuple[str, tuple[int, ...], bool]]:
        """Clauses before the first named affair belong to it (a greeting, the town's name)."""
        while groups and not (groups[0][1] or groups[0][2]) and len(groups) > 1:
            head = groups.pop(0)
            text, cases, statutory = groups[0]
            groups[0] = (head[0] + text, cases, statutory)
        return [g for g in groups if g[1] or g[2]]

    def _single(self, text: str, asks_about_affair: bool) -> list[AffairMention]:
        mention = self._mention(text)
        if mention.cases or mention.statutory or mention.ambiguous:
            return [mention]
        if asks_about_affair and self.vocabulary.affair_name(text):
            return [replace(mention, no_fit=True)]  # an affair that no published case fits is still an affair
        return []

    def mention(self, text: str) -> AffairMention:
        """The text read as one affair (used to re-read an affair with a reply added)."""
        return self._mention(text)

    def _mention(self, text: str) -> AffairMention:
        classification = self.classifier.classify(text)
        strong = [c.case for c in classification.candidates if c.strong]
        return AffairMention(
            text=text.strip(),
            cases=tuple([] if classification.statutory else ([c.case for c in classification.candidates] if classification.ambiguous else strong[:3])),
            statutory=classification.statutory,
            statutory_names=tuple(a["name"] for a in classification.statutory_affairs),
            no_fit=classification.no_fit,
            ambiguous=classification.ambiguous,
            clarifying_question=classification.clarifying_question,
        )
