"""Render validated corpus entries into retrievable chunks (one fact group per chunk)."""

from __future__ import annotations

from collections.abc import Iterator

from assistant.chunk import Chunk, make_chunk
from assistant.knowledge.loader import Knowledge
from assistant.knowledge.models import Case, Sourced

NOTIFICATION_NAMES = {"new": "新規", "change": "変更", "discontinue": "中止", "replace": "届出書の差替え（軽微な変更）"}


def _entry_chunk(entry: Sourced, *, origin: str, kind: str, **fields: object) -> Chunk:
    """A chunk of one corpus entry: its as-of date, confidence and sources travel with it."""
    return make_chunk(as_of=entry.as_of, confidence=entry.confidence, sources=entry.sources, origin=origin, kind=kind,
                      **fields)


def _lines(pairs: list[tuple[str, object]]) -> str:
    out = []
    for label, value in pairs:
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = "、".join(str(v) for v in value)
        out.append(f"{label}: {value}")
    return "\n".join(out)


def case_title(case: Case) -> str:
    return f"事例({case.id}) {case.name}"


def case_text(case: Case) -> str:
    statutory = case.analogous_statutory_affair or "不明"
    if case.analogous_statutory_affair and case.analogous_statutory_confidence:
        statutory += f"（{case.analogous_statutory_confidence}）"
    number = case.case_number
    if number and case.case_number_confidence:
        number += f"（{case.case_number_confidence}）"
    # The information fields name their own confidence only when it is stated apart from the entry's.
    information = f"（{case.information_confidence}）" if case.information_confidence else ""
    return "\n".join(
        [
            case_title(case),
            _lines(
                [
                    ("概要", case.description),
                    ("準ずる法定事務", statutory),
                    ("旧別表第二の項", case.old_appendix2_item or "不明"),
                    ("事例番号", number),
                    ("対象者", case.target_persons),
                    ("目的を表す語", case.purpose_terms),
                    ("給付の内容", case.benefit),
                    ("実務上の呼び方", case.aliases),
                    (f"照会する情報の種類{information}", case.information_kinds),
                    (f"情報照会者{information}", case.information_queriers),
                    (f"情報提供者{information}", case.information_providers),
                    ("事務名の例", case.example_affairs),
                    ("紛らわしいもの", case.distinguish_from),
                    ("補足", case.notes),
                ]
            ),
        ]
    )


def case_chunk(case: Case) -> Chunk:
    return _entry_chunk(
        case,
        source_id=f"case-{case.id:02d}",
        title=case_title(case),
        locator=f"事例一覧 事例({case.id})",
        text=case_text(case),
        kind="cases",
        origin="corpus/cases.yaml",
    )


def _case_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    for case in knowledge.cases.values():
        yield case_chunk(case)


def _statutory_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    for affair in knowledge.statutory:
        related = "、".join(f"事例({c})" for c in affair.related_cases)
        text = "\n".join(
            [
                f"法定事務: {affair.name}" + (f"（{affair.law}）" if affair.law else ""),
                _lines(
                    [
                        ("通称", affair.aliases),
                        ("情報連携の根拠", affair.linkage_basis),
                        ("独自に上乗せする場合に関係する事例", related),
                        ("補足", affair.note),
                    ]
                ),
            ]
        )
        yield _entry_chunk(
            affair,
            source_id=f"statutory-{affair.id}",
            title=f"法定事務: {affair.name}",
            locator=f"法定事務 {affair.name}",
            text=text,
            kind="statutory",
            origin="corpus/statutory.yaml",
        )


def _notification_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    for notice in knowledge.notifications.values():
        common = dict(
            kind="notification",
            as_of=notice.as_of,
            confidence=notice.confidence,
            origin="corpus/notifications.yaml",
            sources=notice.sources,
        )
        yield make_chunk(
            source_id=f"notice-{notice.type}",
            title=notice.name,
            locator=f"届出の種類 {notice.name}",
            text="\n".join(
                [
                    f"{notice.name}（届出の種類）",
                    _lines(
                        [
                            ("定義", notice.definition),
                            ("該当する場合", notice.when),
                            ("該当しない場合", notice.not_when),
                            ("提出するもの", notice.documents),
                            ("受付", notice.window),
                            ("方法", notice.method),
                        ]
                    ),
                ]
            ),
            **common,
        )
        if notice.examples or notice.notes:
            lines = [f"・{e.situation} → {notice.name}。{e.reason}" for e in notice.examples]
            lines += [f"補足: {note}" for note in notice.notes]
            yield make_chunk(
                source_id=f"notice-{notice.type}-examples",
                title=f"{notice.name}の判定例",
                locator=f"届出の種類 {notice.name}の判定例",
                text=f"{notice.name}の判定例\n" + "\n".join(lines),
                **{**common, "confidence": notice.effective_examples_confidence},
            )


def _rule_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    """The reasons of the notification rules, so that an answer that states one cites it verbatim."""
    for rule in knowledge.notification_rules.rules:
        yield _entry_chunk(
            rule,
            source_id=f"rule-{rule.id}",
            title="届出の種類の決め方",
            locator="届出の種類の決め方",
            text=f"届出の種類の決め方\n{rule.reason}",
            kind="notification",
            origin="corpus/notification-rules.yaml",
        )


def _procedure_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    procedure = knowledge.procedure
    for step in procedure.flow:
        yield _entry_chunk(
            step,
            source_id=f"flow-{step.id}",
            title=f"手続の流れ: {step.name}",
            locator=f"手続の流れ {step.name}",
            text=f"手続の流れ（{step.name}）\n{step.description}",
            kind="procedure",
            origin="corpus/procedure.yaml",
        )
    for fact in procedure.schedule:
        yield _entry_chunk(
            fact,
            source_id=f"schedule-{fact.id}",
            title="スケジュール",
            locator="スケジュール",
            text=f"スケジュール\n{fact.fact}",
            kind="procedure",
            origin="corpus/procedure.yaml",
        )
    phase_names = {"preparation": "事前準備", "filing": "届出時", "review": "審査時", "requirement": "要件の確認"}
    for item in procedure.checklist:
        yield _entry_chunk(
            item,
            source_id=f"check-{item.id}",
            title=f"チェック項目（{phase_names[item.phase]}）: {item.label}",
            locator=f"{phase_names[item.phase]}の確認事項",
            text=f"チェック項目（{phase_names[item.phase]}）: {item.label}\n確認すること: {item.question}\n理由: {item.why}",
            kind="checklist",
            origin="corpus/procedure.yaml",
        )


def _guidance_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    for page in knowledge.guidance:
        for number, section in enumerate(page.sections, start=1):
            yield make_chunk(
                source_id=f"guide-{page.id}-{number}",
                title=f"{page.title}: {section.heading}",
                locator=f"{page.title} {section.heading}",
                text=f"{section.heading}\n{section.text}",
                kind="guidance",
                as_of=page.as_of,
                confidence=page.confidence_of(section),
                origin=f"corpus/guidance/{page.id}.md",
                sources=page.sources,
            )
    for change in knowledge.changes:
        yield _entry_chunk(
            change,
            source_id=f"change-{change.id}",
            title="法令・用語の変更点",
            locator=f"法令・用語の変更点（{change.changed_on}）",
            text=f"法令・用語の変更点（{change.changed_on}）\n{change.summary}",
            kind="guidance",
            origin="corpus/changes.yaml",
        )


def _qa_chunks(knowledge: Knowledge) -> Iterator[Chunk]:
    for pair in knowledge.qa:
        yield _entry_chunk(
            pair,
            source_id=pair.id,
            title=f"Q&A: {pair.question}",
            locator=f"よくある質問「{pair.question[:40]}」",
            text=f"Q: {pair.question}\nA: {pair.answer}",
            kind="qa",
            origin="corpus/qa.yaml",
        )


def corpus_chunks(knowledge: Knowledge) -> list[Chunk]:
    chunks: list[Chunk] = []
    for producer in (
        _case_chunks,
        _statutory_chunks,
        _notification_chunks,
        _rule_chunks,
        _procedure_chunks,
        _guidance_chunks,
        _qa_chunks,
    ):
        chunks.extend(producer(knowledge))
    return chunks
