"""Compose a grounded Japanese answer: conclusion, reasons (each cited), what to confirm.

Every sentence that states a fact is a verbatim line of a cited chunk, or a template sentence
whose fact is quoted from a cited chunk. 要確認 facts are marked. Out-of-scope questions are
declined with a pointer to the right place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.advise.classify import CaseClassifier, Classification
from assistant.advise.matching import fold
from assistant.advise.notify import NotificationAdvice, advise_notification, is_notification_question
from assistant.chunk import Chunk
from assistant.answer.render import citation_label
from assistant.citations import Citation, cite
from assistant.config import Settings
from assistant.index.tokenizer import get_tokenizer
from assistant.knowledge import Knowledge
from assistant.knowledge.chunks import NOTIFICATION_NAMES
from assistant.retrieve.hybrid import Hit, HybridRetriever
from assistant.textnorm import mask_personal_data

DOMAIN_TERMS = re.compile(
    r"独自利用|情報連携|連携|届出|届け出|事例|番号法|番号利用条例|条例|特定個人情報|委員会|助成|手当|医療費|給付|貸付|減免|"
    r"事務|要綱|規則|差替|照会|提供|PIA|保護評価|マイナンバー|個人番号|法定|準ずる|受付|様式|審査|公表|根拠規範|相談|承認|許可|"
    r"手引|申請|窓口"
)
SENTENCE_SPLIT = re.compile(r"(?<=[。])")
MAX_REASONS = 4
# Lines that describe what a passage is NOT about read as wrong claims when quoted alone.
SKIP_LINE_PREFIXES = ("該当しない場合", "紛らわしいもの", "実務上の呼び方", "事務名の例", "Q:")
QA_ANSWER_PREFIX = "A: "
MAX_QA_SENTENCES = 3
# Help-desk Q&A answers contain instructions to the desk (「…と説明してください」): not for the asker.
DESK_INSTRUCTION = re.compile(r"(説明|案内|回答|伝え|答え|添え|促し|勧め)(して|て)?ください。?$")
# Questions about one stage of the procedure are answered with that stage's check points.
PHASE_QUESTIONS: list[tuple[str, re.Pattern[str], str]] = [
    ("preparation", re.compile(r"(事前)?準備|前に(何|なに|どんな)|前にやって"), "届出の事前準備では、次の点を確認します。"),
    ("filing", re.compile(r"(届出|届出書|提出)(を|の)?(する|出す|提出する)?(とき|時|際)|届出時|提出時"), "届出の際は、次の点を確認します。"),
    ("review", re.compile(r"審査"), "個人情報保護委員会の審査では、次の点が確認されます。"),
    ("requirement", re.compile(r"要件"), "情報連携の対象となる独自利用事務の要件として、次の点を確認します。"),
]


@dataclass
class AskResult:
    answer: str
    notification_type: str | None = None
    cases: list[int] = field(default_factory=list)
    statutory: bool = False
    out_of_scope: bool = False
    needs_clarification: bool = False
    clarifying_question: str | None = None
    citations: list[Citation] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    question: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "notification_type": self.notification_type,
            "cases": self.cases,
            "statutory": self.statutory,
            "out_of_scope": self.out_of_scope,
            "needs_clarification": self.needs_clarification,
            "clarifying_question": self.clarifying_question,
            "citations": [c.to_dict() for c in self.citations],
            "masked": self.masked,
            "uncertain": self.uncertain,
            "question": self.question,
        }


class _CitationList:
    """Numbered citations; the same quote is cited once."""

    def __init__(self) -> None:
        self.items: list[Citation] = []

    def add(self, citation: Citation) -> int:
        for number, existing in enumerate(self.items, start=1):
            if existing.source_id == citation.source_id and existing.quote == citation.quote:
                return number
        self.items.append(citation)
        return len(self.items)


class Answerer:
    def __init__(self, knowledge: Knowledge, retriever: HybridRetriever, classifier: CaseClassifier, settings: Settings) -> None:
        self.knowledge = knowledge
        self.retriever = retriever
        self.classifier = classifier
        self.settings = settings
        self.by_id = retriever.index.by_id
        self._routing = [(rule, [re.compile(p) for p in rule.patterns]) for rule in knowledge.routing]

    # -- helpers ----------------------------------------------------------------------------------
    def _route(self, text: str):  # noqa: ANN202
        for rule, patterns in self._routing:
            if any(p.search(text) for p in patterns):
                return rule
        return None

    def _best_sentences(self, question: str, hits: list[Hit], limit: int, skip: set[str]) -> list[tuple[str, Chunk]]:
        query_tokens = set(get_tokenizer().tokens(question))
        scored: list[tuple[float, int, str, Chunk]] = []
        for rank, hit in enumerate(hits):
            for line in hit.chunk.text.split("\n"):
                if line.startswith(QA_ANSWER_PREFIX):
                    line = line[len(QA_ANSWER_PREFIX) :]
                for sentence in SENTENCE_SPLIT.split(line):
                    sentence = sentence.strip()
                    if len(sentence) < 12 or sentence in skip or sentence.startswith(SKIP_LINE_PREFIXES):
                        continue
                    tokens = set(get_tokenizer().tokens(sentence))
                    overlap = len(tokens & query_tokens) / (len(query_tokens) ** 0.5 or 1.0)
                    scored.append((overlap * (1.0 + hit.score) - 0.05 * rank, -rank, sentence, hit.chunk))
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        chosen: list[tuple[str, Chunk]] = []
        seen: set[str] = set()
        for score, _, sentence, chunk in scored:
            if score <= 0 or sentence in seen:
                continue
            seen.add(sentence)
            chosen.append((sentence, chunk))
            if len(chosen) >= limit:
                break
        return chosen

    @staticmethod
    def _qa_answer(question: str, hits: list[Hit]) -> tuple[Chunk, list[str]] | None:
        """The curated answer of the Q&A pair whose question is closest to the user's, split into sentences."""
        if not hits:
            return None
        tokenizer = get_tokenizer()
        asked = set(tokenizer.tokens(question))
        top = hits[0].score
        best: tuple[float, Chunk] | None = None
        for hit in hits[:5]:
            if hit.chunk.kind != "qa" or hit.score < 0.6 * top:
                continue
            q_line = hit.chunk.text.split("\n", 1)[0]
            q_tokens = set(tokenizer.tokens(q_line))
            similarity = len(asked & q_tokens) / (len(asked | q_tokens) or 1) + 0.2 * hit.score / (top or 1)
            if best is None or similarity > best[0]:
                best = (similarity, hit.chunk)
        if best is None:
            return None
        for line in best[1].text.split("\n"):
            if line.startswith(QA_ANSWER_PREFIX):
                body = line[len(QA_ANSWER_PREFIX) :]
                sentences = [x.strip() for x in SENTENCE_SPLIT.split(body) if x.strip()]
                sentences = [x for x in sentences if not DESK_INSTRUCTION.search(x)]
                return (best[1], sentences[:MAX_QA_SENTENCES]) if sentences else None
        return None

    def _change_notes(self, citations: list[Citation]) -> list[tuple[str, Chunk]]:
        notes = []
        for change in self.knowledge.changes:
            pattern = re.compile(change.old_pattern)
            if any(c.as_of < change.changed_on and pattern.search(c.quote) for c in citations):
                chunk = self.by_id.get(f"change-{change.id}")
                if chunk is not None:
                    notes.append((change.summary, chunk))
        return notes

    # -- the answer -------------------------------------------------------------------------------
    def answer(self, question: str, *, known_cases: list[int] | None = None) -> AskResult:
        masked_question, masked_kinds = mask_personal_data(question)
        folded = fold(masked_question)
        citations = _CitationList()
        result = AskResult(answer="", masked=masked_kinds, question=masked_question)

        rule = self._route(masked_question)
        if rule is not None and not re.search(r"独自利用|情報連携|届出", masked_question):
            result.out_of_scope = True
            result.answer = f"**このご質問は、本アシスタントの対象（独自利用事務の情報連携）の範囲外です。**\n\n{rule.reply}"
            return result
        # Passages marked at ingest as instructions to the reader are never grounds for an answer.
        hits = [h for h in self.retriever.search(masked_question, k=self.settings.top_k) if not h.chunk.instruction_like]
        if not DOMAIN_TERMS.search(masked_question) or (not hits and rule is None):
            result.out_of_scope = True
            result.answer = (
                "**このご質問は、本アシスタントの対象（独自利用事務の情報連携に関する事前相談）の範囲外のようです。**\n\n"
                "独自利用事務の情報連携（事例の当てはめ、届出の種類、手続・スケジュール、要件）についてご質問ください。"
                "それ以外のマイナンバー制度全般のお問い合わせは、個人情報保護委員会または所管の窓口にお問い合わせください。"
            )
            return result

        classification = self.classifier.classify(masked_question)
        strong = [c for c in classification.candidates if c.reasons and "語句の類似" not in c.reasons[0]]
        if known_cases and not strong:
            result.cases = list(known_cases)
        elif strong and not classification.statutory:
            result.cases = [strong[0].case] if not classification.ambiguous else [c.case for c in strong]
        result.statutory = classification.statutory

        conclusion: list[str] = []
        reasons: list[str] = []
        confirm: list[str] = []

        if classification.statutory:
            self._statutory_part(classification, citations, conclusion, reasons)
        notification_question = is_notification_question(masked_question)
        if notification_question and not classification.statutory:
            advice = advise_notification(masked_question)
            self._notification_part(advice, citations, conclusion, reasons, confirm)
            result.notification_type = advice.notification_type
            if advice.needs_clarification:
                result.needs_clarification = True
                result.clarifying_question = advice.clarifying_question
        if result.cases and not classification.statutory:
            self._case_part(classification, result.cases, citations, conclusion, reasons, confirm)
            if classification.ambiguous and classification.clarifying_question and not result.needs_clarification:
                result.needs_clarification = True
                result.clarifying_question = classification.clarifying_question

        if not conclusion and not result.needs_clarification:
            self._phase_part(masked_question, citations, conclusion)
        qa_answer = None if (conclusion or result.needs_clarification) else self._qa_answer(masked_question, hits)
        if qa_answer is not None:
            qa_chunk, sentences = qa_answer
            for sentence in sentences:
                number = citations.add(cite(qa_chunk, quote=sentence))
                mark = "【要確認】" if qa_chunk.confidence == "要確認" and "【要確認】" not in sentence else ""
                conclusion.append(f"{mark}{sentence} [{number}]")
            hits = [h for h in hits if h.chunk.source_id != qa_chunk.source_id]
        used = {c.quote for c in citations.items}
        for sentence, chunk in self._best_sentences(masked_question, hits, MAX_REASONS - min(len(reasons), 2), used):
            number = citations.add(cite(chunk, quote=sentence))
            mark = "【要確認】" if chunk.confidence == "要確認" and "【要確認】" not in sentence else ""
            reasons.append(f"{mark}{sentence} [{number}]")
        if not conclusion:
            if reasons:
                conclusion.append("関連する資料の記載は次のとおりです。")
            else:
                conclusion.append("ご質問に直接答える記載は、登録されている資料に見当たりませんでした。個人情報保護委員会事務局にご確認ください。")
        for summary, chunk in self._change_notes(citations.items):
            number = citations.add(cite(chunk, quote=chunk.text.split("\n", 1)[-1][:160]))
            confirm.append(f"時点の違いに注意: {summary} [{number}]")
        for citation in citations.items:
            if citation.confidence == "要確認":
                result.uncertain.append(citation.source_id)
        if result.uncertain and not any("公式の手引" in c for c in confirm):
            confirm.append("【要確認】の記載は出典で確認できていない事項を含みます。公式の手引・事例一覧または個人情報保護委員会事務局でご確認ください。")
        if result.needs_clarification and result.clarifying_question:
            confirm.insert(0, f"確認させてください: {result.clarifying_question}")
        result.citations = citations.items
        result.answer = self._format(conclusion, reasons, confirm, citations.items)
        return result

    def _phase_part(self, question: str, citations: _CitationList, conclusion: list[str]) -> None:
        """List the check points of the procedure stage the question asks about (from the corpus)."""
        for phase, pattern, lead in PHASE_QUESTIONS:
            if not pattern.search(question):
                continue
            items = [i for i in self.knowledge.procedure.checklist if i.phase == phase]
            lines = []
            for item in items:
                chunk = self.by_id.get(f"check-{item.id}")
                if chunk is None:
                    continue
                number = citations.add(cite(chunk, [item.label]))
                mark = "【要確認】" if item.confidence == "要確認" else ""
                lines.append(f"- {mark}{item.label}: {item.question} [{number}]")
            if lines:
                conclusion.append(lead)
                conclusion.extend(lines)
            return

    def _statutory_part(self, classification: Classification, citations: _CitationList, conclusion: list[str], reasons: list[str]) -> None:
        names = "、".join(a["name"] for a in classification.statutory_affairs)
        numbers = [citations.add(c) for c in classification.citations]
        refs = "".join(f"[{n}]" for n in numbers)
        conclusion.append(
            f"「{names}」は番号法で利用が定められた法定事務と考えられるため、独自利用事務の情報連携の届出は不要です。{refs}"
        )
        for affair in classification.statutory_affairs:
            reasons.append(f"{affair['name']}の情報連携の根拠: {affair['linkage_basis']} {refs}")

    def _notification_part(
        self, advice: NotificationAdvice, citations: _CitationList, conclusion: list[str], reasons: list[str], confirm: list[str]
    ) -> None:
        code = advice.notification_type
        if code is None:
            for reason in advice.reasons:
                reasons.append(("【要確認】" if advice.uncertain else "") + reason)
            conclusion.append("届出の種類は、いただいた情報だけでは決められません。")
            if advice.consult_ppc:
                confirm.append("取扱いが明確でないため、個人情報保護委員会事務局への事前相談をお勧めします。")
            for notice in self.knowledge.notifications.values():
                chunk = self.by_id.get(f"notice-{notice.type}")
                if chunk is not None and any(k in (advice.clarifying_question or "") for k in ("何が変わる", "変わるのは", "届出をしていますか")):
                    number = citations.add(cite(chunk, ["定義"]))
                    reasons.append(f"{notice.name}: {cite(chunk, ['定義']).quote} [{number}]")
            return
        notice = self.knowledge.notifications[code]
        chunk = self.by_id[f"notice-{code}"]
        definition = citations.add(cite(chunk, ["定義"]))
        window = citations.add(cite(chunk, ["受付"]))
        method = citations.add(cite(chunk, ["方法"]))
        label = NOTIFICATION_NAMES[code]
        suffix = "" if label in notice.name else f"（{label}）"
        conclusion.append(f"「{notice.name}」{suffix}に当たると考えられます。[{definition}]")
        reasons.extend(f"{r} [{definition}]" for r in advice.reasons)
        reasons.append(f"受付: {notice.window}、方法: {notice.method} [{window}][{method}]")
        if notice.confidence == "要確認":
            confirm.append("【要確認】届出の種類の判定例には出典で確認できていないものを含みます。迷う場合は個人情報保護委員会事務局にご確認ください。")

    def _case_part(
        self,
        classification: Classification,
        cases: list[int],
        citations: _CitationList,
        conclusion: list[str],
        reasons: list[str],
        confirm: list[str],
    ) -> None:
        by_case = {c.case: c for c in classification.candidates}
        for case_id in cases[:3]:
            candidate = by_case.get(case_id)
            if candidate is None:
                continue
            numbers = "".join(f"[{citations.add(c)}]" for c in candidate.citations)
            conclusion.append(f"事例({case_id})「{candidate.name}」が当てはまると考えられます。{numbers}")
            if candidate.analogous_statutory_affair:
                mark = "【要確認】" if candidate.analogous_statutory_confidence == "要確認" else ""
                reasons.append(f"{mark}準ずる法定事務: {candidate.analogous_statutory_affair} {numbers}")
        if classification.ambiguous and classification.clarifying_question:
            confirm.append(classification.clarifying_question)

    @staticmethod
    def _format(conclusion: list[str], reasons: list[str], confirm: list[str], citations: list[Citation]) -> str:
        parts = ["**結論**", *conclusion]
        if reasons:
            parts += ["", "**理由・根拠**", *[f"- {r}" for r in reasons]]
        if confirm:
            parts += ["", "**確認が必要な点**", *[f"- {c}" for c in confirm]]
        if citations:
            parts += ["", "**出典**"]
            parts += [f"[{number}] {citation_label(c.to_dict())}" for number, c in enumerate(citations, start=1)]
        return "\n".join(parts)
