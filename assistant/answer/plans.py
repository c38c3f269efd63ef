"""Answer plans: for each intent, which structured facts answer it and the sentence that answers it first.

A plan adds statements to the answer object, each with the citations of the facts it states. Retrieved passages
that no plan asked for appear only as a separate related excerpt.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


from assistant.yamlio import load_yaml

from assistant.advise.classify import CaseCandidate, CaseClassifier
from assistant.advise.notify import AffairFacts, NotificationAdvisor
from assistant.answer.model import Answer, Excerpt, Statement
from assistant.answer.sources import SourceNames
from assistant.chunk import Chunk
from assistant.citations import cite
from assistant.dialogue.state import ConversationState, TurnFocus, asked_key
from assistant.index.tokenizer import get_tokenizer
from assistant.knowledge import Knowledge
from assistant.knowledge.chunks import NOTIFICATION_NAMES
from assistant.knowledge.models import CONFIRMED, UNCONFIRMED
from assistant.retrieve.hybrid import Hit, HybridRetriever
from assistant.textnorm import join_japanese_lines
from assistant.understand.model import ReaderModel
from assistant.understand.reader import ReaderVocabulary
from assistant.understand.reading import Reading

TEMPLATES_FILE = "answer-templates.yaml"
FILTERS_FILE = "answer-filters.yaml"
MAX_INTENTS_PER_ANSWER = 3
MAX_QA_SENTENCES = 3
QA_MIN_SIMILARITY = 0.3
BARE_REPLY_MAX_CHARS = 10
QA_STRONG_SIMILARITY = 0.45
HELPDESK_AUDIENCE = "ヘルプデスク"
QA_INTENT_BONUS = 0.1  # an entry that asks the same kind of question counts as closer
# Intents decided from the affair and its facts: a generic Q&A never answers them in place of the decision.
DECISION_INTENTS = ("case_fit", "analogous_affair", "notification_type", "statutory", "case_list", "answer", "correction",
                    "greeting", "out_of_scope", "reply_draft", "preparation", "filing_points", "review_points",
                    "requirements", "procedure_flow", "after_filing")
# Intents whose answer depends on the affair in focus (its case, its notification type) once one is known.
AFFAIR_INTENTS = ("timing", "info_scope", "filing_points")
RELATED_MAX_CHARS = 120
SENTENCE_SPLIT = re.compile(r"(?<=[。])")
UNCERTAIN_MARK = "【要確認】"
WINDOWED_TYPES = ("new", "change", "discontinue")
WINDOW_FACTS = ("windows-3-per-year", "replace-any-time", "forms-10-months")
SCHEDULE_MIN_OVERLAP = 0.5
STAGE_INTENTS = {"preparation": "preparation", "filing_points": "filing", "review_points": "review", "requirements": "requirement"}
# Intents answered from the closest Q&A or guidance section when it answers the question.
QA_INTENTS = ("terms", "legal_basis", "effects", "pia", "contact", "info_scope", "after_filing", "statutory")


@dataclass
class PlanContext:
    reading: Reading
    state: ConversationState
    focus: TurnFocus
    _hits: list[Hit] | None = None  # retrieval for the message, done at most once per answer
    primary: bool = True  # planning the message's first intent (only that one may ask back)


class Planner:
    def __init__(self, knowledge: Knowledge, retriever: HybridRetriever, classifier: CaseClassifier,
                 advisor: NotificationAdvisor, vocabulary: ReaderVocabulary, reader_model: ReaderModel, *,
                 top_k: int = 8) -> None:
        self.vocabulary = vocabulary
        self.reader_model = reader_model
        self.knowledge = knowledge
        self.retriever = retriever
        self.by_id: Mapping[str, Chunk] = retriever.index.by_id
        self.classifier = classifier
        self.advisor = advisor
        self.names = SourceNames(knowledge)
        self.top_k = top_k
        self.templates = _load_yaml(knowledge.root / TEMPLATES_FILE)
        filters = _load_yaml(knowledge.root / FILTERS_FILE)
        self._hidden = [re.compile(p) for key in ("staff_notes", "research_notes") for p in filters.get(key, [])]
        self._routing = [(rule, [re.compile(p) for p in rule.patterns]) for rule in knowledge.routing]

    # -- helpers -----------------------------------------------------------------------------------
    def t(self, group: str, key: str, **values: object) -> str:
        return str(self.templates[group][key]).format(**values)

    def _cite(self, answer: Answer, chunk_id: str, needles: list[str] | None = None, quote: str | None = None,
              confidence: str | None = None) -> tuple[int, ...]:
        chunk = self.by_id.get(chunk_id)
        if chunk is None:
            return ()
        return (answer.cite(cite(chunk, needles, quote, confidence=confidence, label=self.names.label(chunk))),)

    def _affair_name(self, text: str) -> str:
        name = self.vocabulary.affair_name(text)
        return f"「{name}」" if name else ""

    def _say(self, section: list[Statement], text: str, refs: tuple[int, ...] = (), uncertain: bool = False,
             *, consult: bool = False) -> None:
        if UNCERTAIN_MARK in text:  # the corpus marks an unconfirmed part inline: the statement carries the mark
            text, uncertain = text.replace(UNCERTAIN_MARK, ""), True
        text = join_japanese_lines(text)  # corpus values keep the spaces of folded YAML lines
        section.append(Statement(text, refs, uncertain, consult))

    def _ask(self, answer: Answer, ctx: PlanContext, slot: str, question: str) -> None:
        if answer.clarifying_question is None and ctx.primary:
            answer.clarifying_question = question
            answer.clarifying_slot = slot

    def shown(self, sentence: str) -> bool:
        """A corpus sentence that may be shown to the asker (no staff notes, no research notes)."""
        return not any(p.search(sentence) for p in self._hidden)

    # -- the answer --------------------------------------------------------------------------------
    def plan(self, ctx: PlanContext) -> Answer:
        answer = Answer(question=ctx.reading.text, intents=list(ctx.focus.intents))
        affair = ctx.state.affair
        if affair is not None:
            answer.cases = list(affair.cases[:3] if affair.ambiguous else affair.cases[:1])
            answer.statutory = affair.statutory and not affair.cases
        intents = list(ctx.focus.intents[:MAX_INTENTS_PER_ANSWER])
        if intents and not self._structured_first(intents[0], ctx) and self._answered_by_qa(ctx, answer, QA_STRONG_SIMILARITY):
            intents = intents[1:]  # a curated answer to nearly the same question answers the first intent
            ctx.primary = False
        for intent in intents:
            getattr(self, f"plan_{intent}", self.plan_fallback)(ctx, answer)
            ctx.primary = False
            if answer.out_of_scope:
                break
        if not answer.conclusion and not answer.out_of_scope and answer.clarifying_question is None:
            self.plan_fallback(ctx, answer)
        if not answer.out_of_scope:
            self._documents_excerpt(ctx, answer)
            self._change_notes(answer)
        return answer

    def _documents_excerpt(self, ctx: PlanContext, answer: Answer) -> None:
        """A document the user's organisation ingested that bears on the question is shown as related material."""
        if answer.related:
            return
        hits = [h for h in self.hits(ctx) if not h.chunk.origin.startswith("corpus/")]
        excerpt = self.related_excerpt(ctx.reading.text, hits, answer) if hits else None
        if excerpt is not None:
            answer.related.append(excerpt)

    def _change_notes(self, answer: Answer) -> None:
        """A cited source older than a change of the law or its terms gets a note of what changed since."""
        for change in self.knowledge.changes:
            pattern = re.compile(change.old_pattern)
            # The registry names old appendix items on purpose (labelled as old): only other texts can mislead.
            if any(c.as_of < change.changed_on and pattern.search(c.quote) and not c.source_id.startswith(("case-", "statutory-"))
                   for c in answer.citations):
                refs = self._cite(answer, f"change-{change.id}", quote=None)
                self._say(answer.confirm, f"時点の違いに注意: {change.summary}", refs,
                          uncertain=change.confidence == UNCONFIRMED)

    # -- affairs and cases -------------------------------------------------------------------------
    def plan_case_fit(self, ctx: PlanContext, answer: Answer) -> None:
        named = [i for i, a in enumerate(ctx.state.affairs) if any(m.text and m.text in a.text for m in ctx.reading.affairs)]
        if len(named) > 1:  # each affair the message names gets its own case
            focus = ctx.state.focus
            for index in named:
                ctx.state.focus = index
                self._case_fit(ctx, answer)
            ctx.state.focus = focus
            return
        self._case_fit(ctx, answer)

    def _case_fit(self, ctx: PlanContext, answer: Answer) -> None:
        affair = ctx.state.affair
        if affair is None:
            self._ask(answer, ctx, "affair", self.t("case_fit", "ask_affair"))
            return
        if affair.statutory and not affair.cases:
            self._statutory(ctx, answer)
            return
        if affair.ambiguous and affair.clarifying_question:
            self._ask(answer, ctx, "target", affair.clarifying_question)
            return
        classification = self.classifier.classify(affair.text)
        if not affair.cases:
            self._say(answer.conclusion, self.t("case_fit", "no_fit"))
            self._say(answer.confirm, self.t("case_fit", "no_fit_advice"), consult=True)
            return
        by_case = {c.case: c for c in classification.candidates}
        case = self.knowledge.cases[affair.cases[0]]
        candidate = by_case.get(case.id)
        # The case names are the commission's own (they match its list word for word): the name line is confirmed
        # even where other facts of the case entry are not.
        refs = self._cite(answer, f"case-{case.id:02d}", quote=f"事例({case.id}) {case.name}", confidence=CONFIRMED)
        label = self._affair_name(affair.text)
        text = self.t("case_fit", "fits", affair=label, case=case.id, name=case.name) if label else \
            self.t("case_fit", "fits_plain", case=case.id, name=case.name)
        self._say(answer.conclusion, text, refs)
        if candidate is not None:
            self._evidence(answer, candidate, refs)
        self._analogous(answer, case.id, section=answer.reasons)
        others = [c for c in classification.candidates if c.strong and c.case != case.id and c.case not in (3, 4) or
                  (c.strong and c.case in (3, 4) and case.id not in (3, 4))][:2]
        if others and candidate is not None and candidate.signature_terms and others[0].score >= 0.8 * candidate.score:
            names = "、".join(f"事例({c.case})" for c in others)
            self._say(answer.confirm, self.t("case_fit", "alternatives", others=names))

    def _evidence(self, answer: Answer, candidate: CaseCandidate, refs: tuple[int, ...]) -> None:
        if candidate.signature_terms:
            self._say(answer.reasons, self.t("case_fit", "evidence_terms", terms="」「".join(candidate.signature_terms)), refs)
        elif candidate.alias_terms:
            self._say(answer.reasons, self.t("case_fit", "evidence_alias", alias=candidate.alias_terms[0]), refs)
        if candidate.statutory_boost:
            self._say(answer.reasons, self.t("case_fit", "independent"), refs)

    def _analogous(self, answer: Answer, case_id: int, *, section: list[Statement]) -> None:
        case = self.knowledge.cases[case_id]
        if case.analogous_statutory_affair:
            confidence = case.analogous_statutory_confidence or case.confidence
            refs = self._cite(answer, f"case-{case_id:02d}", ["準ずる法定事務"], confidence=confidence)
            self._say(section, self.t("case_fit", "analogous", affair=case.analogous_statutory_affair), refs,
                      uncertain=confidence == UNCONFIRMED)
        else:
            refs = self._cite(answer, f"case-{case_id:02d}", ["準ずる法定事務"], confidence=UNCONFIRMED)
            self._say(section, self.t("case_fit", "analogous_unknown"), refs, uncertain=True)

    def _statutory(self, ctx: PlanContext, answer: Answer) -> None:
        affair = ctx.state.affair
        assert affair is not None
        names = [a for a in self.knowledge.statutory if a.name in affair.statutory_names]
        refs: tuple[int, ...] = ()
        for statutory in names:
            refs += self._cite(answer, f"statutory-{statutory.id}", ["情報連携の根拠"])
        self._say(answer.conclusion, self.t("case_fit", "statutory", names="、".join(affair.statutory_names)), refs)
        for statutory in names:
            ref = self._cite(answer, f"statutory-{statutory.id}", ["情報連携の根拠"])
            self._say(answer.reasons, self.t("case_fit", "statutory_basis", name=statutory.name, basis=statutory.linkage_basis),
                      ref, uncertain=statutory.confidence == UNCONFIRMED)
        answer.statutory = True

    def plan_analogous_affair(self, ctx: PlanContext, answer: Answer) -> None:
        affair = ctx.state.affair
        if affair is None or not affair.cases:
            self.plan_case_fit(ctx, answer)
            return
        case = self.knowledge.cases[affair.cases[0]]
        if case.analogous_statutory_affair:
            confidence = case.analogous_statutory_confidence or case.confidence
            refs = self._cite(answer, f"case-{case.id:02d}", ["準ずる法定事務"], confidence=confidence)
            self._say(answer.conclusion, self.t("analogous_affair", "known", case=case.id, name=case.name,
                                                affair=case.analogous_statutory_affair), refs,
                      uncertain=confidence == UNCONFIRMED)
        else:
            refs = self._cite(answer, f"case-{case.id:02d}", ["準ずる法定事務"], confidence=UNCONFIRMED)
            self._say(answer.conclusion, self.t("analogous_affair", "unknown", case=case.id, name=case.name), refs, uncertain=True)

    def plan_statutory(self, ctx: PlanContext, answer: Answer) -> None:
        affair = ctx.state.affair
        if affair is None:
            self._ask(answer, ctx, "affair", self.t("statutory", "unknown"))
        elif affair.statutory and not affair.cases:
            self._statutory(ctx, answer)
        else:
            label = self._affair_name(affair.text) or "この事務"
            refs = self._cite(answer, "check-prep-not-statutory", ["法定事務"])
            self._say(answer.conclusion, self.t("statutory", "no", affair=label), refs)
            if affair.cases:
                self.plan_case_fit(ctx, answer)

    # -- notification --------------------------------------------------------------------------------
    def plan_notification_type(self, ctx: PlanContext, answer: Answer) -> None:
        affair = ctx.state.affair
        facts = affair.facts if affair is not None else AffairFacts.from_dict(ctx.reading.facts.to_dict())
        if affair is not None and affair.statutory and not affair.cases:
            self._statutory(ctx, answer)
            return
        if affair is None and facts.empty:  # about the types themselves, not about which one an affair needs
            if not ctx.reading.has("terms"):
                self._types(ctx, answer)
            return
        decision = self.advisor.decide(facts)
        rule = decision.rule
        uncertain = rule.confidence == UNCONFIRMED
        if decision.notification_type is None and not ctx.primary:
            return  # a side question that the facts do not decide is left to the question it rides on
        if decision.notification_type is not None:
            code = decision.notification_type
            notice = self.knowledge.notifications[code]
            refs = self._cite(answer, f"notice-{code}", ["定義"])
            self._say(answer.conclusion, self.t("notification", "decided", name=_notice_name(notice.name, code)), refs)
            self._say(answer.reasons, rule.reason, self._cite(answer, f"rule-{rule.id}", quote=rule.reason), uncertain=uncertain)
            window_refs = self._cite(answer, f"notice-{code}", ["受付"])
            self._say(answer.reasons, self._window_sentence(code), window_refs)
            answer.notification_type = code
        else:
            asked_before = affair is not None and asked_key(decision.question_slot or "", ctx.state.focus) in ctx.state.asked
            if ctx.focus.unsure or (decision.question and asked_before and ctx.focus.filled_slot is None):
                self._say(answer.conclusion, self.t("notification", "undecided"))
                self._say(answer.confirm, self.t("notification", "unsure"), consult=True)
                self._say(answer.confirm, self.t("notification", "consult"), consult=True)
                return
            self._say(answer.conclusion if not answer.conclusion else answer.reasons, rule.reason,
                      self._cite(answer, f"rule-{rule.id}", quote=rule.reason), uncertain=uncertain)
            if decision.question:
                self._ask(answer, ctx, decision.question_slot or "", decision.question)
        if decision.consult:
            self._say(answer.confirm, self.t("notification", "consult"), consult=True)
        if facts.unpromulgated:
            refs = self._cite(answer, "check-filing-norms-promulgated", ["公布"])
            self._say(answer.confirm, self.t("notification", "unpromulgated"), refs)

    def _named_types(self, ctx: PlanContext) -> list[str]:
        """The notification types the message names by their short names (新規・変更・中止・差替え)."""
        return [c for c in self.vocabulary.named_notification_types(ctx.reading.text) if c in self.knowledge.notifications]

    def _types(self, ctx: PlanContext, answer: Answer) -> None:
        """The types a message names (「中止の届出はどんなときに」), or all four with one line each."""
        named = self._named_types(ctx)
        codes = named or list(self.knowledge.notifications)
        if not named:
            self._say(answer.conclusion, self.t("notification", "kinds", count=len(codes)),
                      self._cite(answer, "notice-new", ["定義"]))
        for code in codes:
            notice = self.knowledge.notifications[code]
            refs = self._cite(answer, f"notice-{code}", ["定義"])
            section = answer.conclusion if named and code == codes[0] else answer.reasons
            definition = _first_sentence(notice.definition)
            self._say(section, f"{_notice_name(notice.name, code)}: {definition}", refs, uncertain=notice.confidence == UNCONFIRMED)
            if named:
                self._say(answer.reasons, self._window_sentence(code), self._cite(answer, f"notice-{code}", ["受付"]))
        if ctx.primary and not named:
            self._ask(answer, ctx, "existing", self.knowledge.notification_rules.questions["existing"])

    def _window_sentence(self, code: str) -> str:
        if code in WINDOWED_TYPES:
            return self.t("timing", "windowed", name=_notice_name(self.knowledge.notifications[code].name, code))
        return self.t("timing", "any_time")

    def plan_timing(self, ctx: PlanContext, answer: Answer) -> None:
        """The filing windows, led by the schedule fact closest to what was asked when it is a more specific one."""
        affair = ctx.state.affair
        code = affair.notification_type if affair is not None else None
        ranked = self._closest_schedule_facts(ctx.reading.text)
        specific = [f for f in ranked[:1] if f.id not in WINDOW_FACTS]
        for fact in specific:
            refs = self._cite(answer, f"schedule-{fact.id}")
            self._say(answer.conclusion, _first_sentence(fact.fact), refs, uncertain=fact.confidence == UNCONFIRMED)
        section = answer.reasons if specific else answer.conclusion
        schedule = self._cite(answer, "schedule-windows-3-per-year", ["年3回"])
        if code:
            refs = self._cite(answer, f"notice-{code}", ["受付"]) + (schedule if code in WINDOWED_TYPES else ())
            self._say(section, self._window_sentence(code), refs)
        else:
            refs = schedule + self._cite(answer, "notice-replace", ["受付"])
            self._say(section, self.t("timing", "all"), refs)
        forms = next((f for f in self.knowledge.procedure.schedule if f.id == "forms-10-months"), None)
        if forms is not None and not specific:
            self._say(answer.reasons, _first_sentence(forms.fact), self._cite(answer, "schedule-forms-10-months"),
                      uncertain=forms.confidence == UNCONFIRMED)

    def _closest_schedule_facts(self, question: str) -> list:
        tokenizer = get_tokenizer()
        asked = set(tokenizer.tokens(question))
        scored = []
        for fact in self.knowledge.procedure.schedule:
            overlap = len(asked & set(tokenizer.tokens(fact.fact))) / (len(asked) or 1)
            scored.append((overlap, fact))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return [fact for overlap, fact in scored if overlap >= SCHEDULE_MIN_OVERLAP]

    # -- procedure stages ----------------------------------------------------------------------------
    def _stage(self, answer: Answer, phase: str) -> None:
        items = [i for i in self.knowledge.procedure.checklist if i.phase == phase]
        points = sorted((i for i in items if i.page_point), key=lambda i: i.page_point or 0) or items
        lines = []
        for item in points:
            refs = self._cite(answer, f"check-{item.id}", [item.label])
            lines.append(Statement(self.t("stage", "item", label=item.label, question=item.question), refs,
                                   item.confidence == UNCONFIRMED))
        lead = self.t("stage", phase, count=len(lines))
        self._say(answer.conclusion, lead)
        answer.reasons.extend(lines)

    def plan_preparation(self, ctx: PlanContext, answer: Answer) -> None:
        self._stage(answer, "preparation")

    def plan_filing_points(self, ctx: PlanContext, answer: Answer) -> None:
        self._stage(answer, "filing")
        affair = ctx.state.affair
        code = affair.notification_type if affair is not None else None
        if code:
            notice = self.knowledge.notifications[code]
            refs = self._cite(answer, f"notice-{code}", ["提出するもの"])
            documents = [d for d in notice.documents if UNCERTAIN_MARK not in d]
            if documents:
                self._say(answer.reasons, f"{_notice_name(notice.name, code)}で提出するもの: {'、'.join(documents)}", refs)

    def plan_review_points(self, ctx: PlanContext, answer: Answer) -> None:
        self._stage(answer, "review")

    def plan_requirements(self, ctx: PlanContext, answer: Answer) -> None:
        self._stage(answer, "requirement")

    def _flow(self, answer: Answer, step_ids: list[str] | None, lead: str) -> None:
        self._say(answer.conclusion, self.t("flow", lead))
        for step in self.knowledge.procedure.flow:
            if step_ids is not None and step.id not in step_ids:
                continue
            refs = self._cite(answer, f"flow-{step.id}")
            sentence = next((s for s in _sentences(step.description) if self.shown(s) and UNCERTAIN_MARK not in s), "")
            self._say(answer.reasons, self.t("flow", "step", name=step.name, description=sentence), refs,
                      uncertain=step.confidence == UNCONFIRMED and UNCERTAIN_MARK in step.description and not sentence)

    def plan_after_filing(self, ctx: PlanContext, answer: Answer) -> None:
        self._flow(answer, ["review", "publication", "linkage"], "after_filing")

    def plan_procedure_flow(self, ctx: PlanContext, answer: Answer) -> None:
        self._flow(answer, None, "whole")

    def plan_info_scope(self, ctx: PlanContext, answer: Answer) -> None:
        affair = ctx.state.affair
        refs = self._cite(answer, "check-review-info-same-or-part", ["同一"])
        self._say(answer.conclusion, self.t("info_scope", "rule"), refs)
        if affair is not None and affair.cases:
            case = self.knowledge.cases[affair.cases[0]]
            if case.analogous_statutory_affair:
                confidence = case.analogous_statutory_confidence or case.confidence
                refs = self._cite(answer, f"case-{case.id:02d}", ["準ずる法定事務"], confidence=confidence)
                self._say(answer.reasons, self.t("info_scope", "case", case=case.id, affair=case.analogous_statutory_affair),
                          refs, uncertain=confidence == UNCONFIRMED)
            if case.information_kinds:
                confidence = case.effective_information_confidence
                refs = self._cite(answer, f"case-{case.id:02d}", ["照会する情報の種類"], confidence=confidence)
                self._say(answer.reasons, self.t("info_scope", "kinds", kinds="、".join(case.information_kinds)), refs,
                          uncertain=confidence == UNCONFIRMED)
        provider = next((i for i in self.knowledge.procedure.checklist if i.id == "req-providers"), None)
        if provider is not None:
            refs = self._cite(answer, "check-req-providers")
            self._say(answer.reasons, _first_sentence(provider.why) or provider.question, refs,
                      uncertain=provider.confidence == UNCONFIRMED)

    def plan_case_list(self, ctx: PlanContext, answer: Answer) -> None:
        refs = self._cite(answer, "case-01", quote=f"事例(1) {self.knowledge.cases[1].name}", confidence=CONFIRMED)
        self._say(answer.conclusion, self.t("case_list", "count", count=len(self.knowledge.cases)), refs)
        if self.vocabulary.asks_for_listing(ctx.reading.text):
            names = "、".join(f"({c.id}){_short_case_name(c.name)}" for c in self.knowledge.cases.values())
            self._say(answer.reasons, self.t("case_list", "listing", names=names), refs)
        self._say(answer.reasons, self.t("case_list", "browse"))

    # -- conversation -------------------------------------------------------------------------------
    def plan_greeting(self, ctx: PlanContext, answer: Answer) -> None:
        key = "hello" if not ctx.state.last_intents and not ctx.state.affairs else "thanks"
        self._say(answer.conclusion, self.t("greeting", key))

    def plan_answer(self, ctx: PlanContext, answer: Answer) -> None:
        self.plan_fallback(ctx, answer)

    def plan_correction(self, ctx: PlanContext, answer: Answer) -> None:
        self.plan_fallback(ctx, answer)

    def plan_reply_draft(self, ctx: PlanContext, answer: Answer) -> None:
        answer.reply_draft_requested = True

    def plan_out_of_scope(self, ctx: PlanContext, answer: Answer) -> None:
        rule = self.route(ctx.reading.text)
        answer.out_of_scope = True
        answer.cases = []
        answer.statutory = False
        if rule is not None:
            self._say(answer.conclusion, self.t("out_of_scope", "lead"))
            self._say(answer.reasons, " ".join(rule.reply.split()))
        else:
            self._say(answer.conclusion, self.t("out_of_scope", "generic"))

    def route(self, text: str):  # noqa: ANN201
        for rule, patterns in self._routing:
            if any(p.search(text) for p in patterns):
                return rule
        return None

    # -- questions answered from the Q&A and guidance ---------------------------------------------------
    def plan_terms(self, ctx: PlanContext, answer: Answer) -> None:
        if self._named_types(ctx):  # what a notification type means: its definition, from the corpus
            self._types(ctx, answer)
            return
        self.plan_fallback(ctx, answer)

    def plan_legal_basis(self, ctx: PlanContext, answer: Answer) -> None:
        self.plan_fallback(ctx, answer)
    plan_effects = plan_legal_basis
    plan_pia = plan_legal_basis
    plan_contact = plan_legal_basis

    def hits(self, ctx: PlanContext) -> list[Hit]:
        if ctx._hits is None:  # text that reads like instructions to a model is never quoted
            hits = self.retriever.search(ctx.reading.text, k=self.top_k)
            ctx._hits = [h for h in hits if not h.chunk.instruction_like]
        return ctx._hits

    @staticmethod
    def _structured_first(intent: str, ctx: PlanContext) -> bool:
        """Intents whose answer the affair and its facts decide, before any generic Q&A answer."""
        affair = ctx.state.affair
        return intent in DECISION_INTENTS or (intent in AFFAIR_INTENTS and affair is not None and bool(affair.cases))

    def _answered_by_qa(self, ctx: PlanContext, answer: Answer, threshold: float) -> bool:
        qa = self.closest_qa(ctx.reading.text, ctx.focus.intents, threshold, asker=ctx.state.asker)
        if qa is None:
            return False
        chunk, sentences = qa
        for sentence in sentences:
            refs = (answer.cite(cite(chunk, quote=sentence, label=self.names.label(chunk))),)
            self._say(answer.conclusion, sentence, refs, uncertain=chunk.confidence == UNCONFIRMED)
        return True

    def plan_fallback(self, ctx: PlanContext, answer: Answer) -> None:
        if any(c.source_id.startswith("qa-") for c in answer.citations):
            return  # a Q&A answer is already given
        if self._answered_by_qa(ctx, answer, QA_MIN_SIMILARITY):
            return
        hits = self.hits(ctx)
        excerpt = self.related_excerpt(ctx.reading.text, hits, answer)
        if excerpt is not None:
            self._say(answer.conclusion, self.t("fallback", "related"))
            answer.related.append(excerpt)
        else:
            self._say(answer.conclusion, self.t("fallback", "nothing"))

    @functools.cached_property
    def _qa_questions(self) -> list[tuple[str, frozenset[str], frozenset[str], str]]:
        """Every Q&A entry's chunk id, the words of its question, the intents the reader finds in it, its audience."""
        tokenizer = get_tokenizer()
        pairs = [p for p in self.knowledge.qa if p.id in self.by_id]
        readings = self.reader_model.predict_many([p.question for p in pairs]) if pairs else []
        return [(p.id, frozenset(tokenizer.tokens(p.question)), frozenset(r.chosen_intents()), p.audience)
                for p, r in zip(pairs, readings)]

    def closest_qa(self, question: str, intents: tuple[str, ...], threshold: float = QA_MIN_SIMILARITY, *,
                   asker: str = "staff") -> tuple[Chunk, list[str]] | None:
        """The curated answer of the Q&A entry that asks the same kind of question (an intent in common) in the
        closest words, when it is close enough."""
        asked = set(get_tokenizer().tokens(question))
        wanted = set(intents)
        best: tuple[float, str] | None = None
        for chunk_id, words, qa_intents, audience in self._qa_questions:
            if asker == "staff" and audience == HELPDESK_AUDIENCE:
                continue  # written for the help desk (how to answer a town), not for the town itself
            similarity = len(asked & words) / (len(asked | words) or 1)
            if wanted & qa_intents:
                similarity += QA_INTENT_BONUS
            if best is None or similarity > best[0]:
                best = (similarity, chunk_id)
        if best is None or best[0] < threshold:
            return None
        chunk = self.by_id[best[1]]
        if chunk.instruction_like:
            return None
        body = next((line.removeprefix("A: ") for line in chunk.text.split("\n") if line.startswith("A: ")), "")
        sentences = [s for s in _sentences(body) if self.shown(s)]
        if sentences and len(sentences[0]) <= BARE_REPLY_MAX_CHARS and len(sentences) > 1:
            sentences = sentences[1:]  # 「あります。」 answers the entry's own question, not necessarily the user's
        return (chunk, sentences[:MAX_QA_SENTENCES]) if sentences else None

    def related_excerpt(self, question: str, hits: list[Hit], answer: Answer) -> Excerpt | None:
        """One retrieved passage as related material: an ingested official document first, never a case chunk
        (another case's description) or a list of examples."""
        cited = {c.source_id for c in answer.citations}
        usable = [h for h in hits if h.chunk.source_id not in cited and h.chunk.kind not in ("cases",)
                  and not h.chunk.source_id.endswith("-examples") and not h.chunk.instruction_like]
        if not usable:
            return None
        usable.sort(key=lambda h: (not self.names.is_official_document(h.chunk), -h.score))
        chunk = usable[0].chunk
        tokens = set(get_tokenizer().tokens(question))
        lines = [re.sub(r"^[QA]: ", "", line) for line in chunk.text.split("\n")[1:] or [chunk.text]]
        sentences = [s for line in lines for s in _sentences(line) if self.shown(s)]
        if not sentences:
            return None
        best = max(sentences, key=lambda s: len(tokens & set(get_tokenizer().tokens(s))))
        quote = best[:RELATED_MAX_CHARS]
        index = answer.cite(cite(chunk, quote=quote, label=self.names.label(chunk)))
        return Excerpt(index, quote.replace(UNCERTAIN_MARK, ""), chunk.confidence == UNCONFIRMED or UNCERTAIN_MARK in quote)


def _load_yaml(path: Path) -> dict:
    return load_yaml(path.read_text(encoding="utf-8")) or {}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]


def _first_sentence(text: str) -> str:
    sentences = _sentences(text)
    return sentences[0] if sentences else ""


def _notice_name(name: str, code: str) -> str:
    return name if NOTIFICATION_NAMES[code] in name else f"{name}（{NOTIFICATION_NAMES[code]}）"


def _short_case_name(name: str) -> str:
    return re.sub(r"(に関する事務)?(又はこれらに類するその他の事務)$", "", name)

