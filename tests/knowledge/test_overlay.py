"""Corrections laid over corpus/: applied with the corpus's own models and rules, reported when they do not apply."""

import shutil
from pathlib import Path

import pytest
import yaml

from assistant.config import DEFAULT_CORPUS_DIR
from assistant.knowledge import load_knowledge
from assistant.knowledge.chunks import case_chunk
from assistant.knowledge.models import CuratedSource
from assistant.textnorm import normalize
from assistant.knowledge.overlay import (
    Correction,
    Overlay,
    OverlayError,
    apply_overlay,
    knowledge_facts,
    parse_path,
)

TABLE = CuratedSource(id="事例一覧_令和8年.xlsx（2026-04-01時点）", title="事例一覧（令和8年4月）", as_of="2026-04-01",
                      confidence="確認済み")


@pytest.fixture(scope="module")
def base():
    return load_knowledge(DEFAULT_CORPUS_DIR)


def confirm_case_5(base, number: int = 1) -> Correction:  # noqa: ANN001
    case = base.cases[5]
    return Correction(number, "cases.5.analogous_statutory_affair", before=case.analogous_statutory_affair,
                      after=case.analogous_statutory_affair, confidence="確認済み",
                      confidence_before=case.analogous_statutory_confidence, source=TABLE.id, as_of="2026-04-01",
                      reason="公式の事例一覧で確認")


def test_a_correction_changes_the_fact_its_source_and_date_and_nothing_else(base) -> None:  # noqa: ANN001
    corrected = apply_overlay(base, Overlay((confirm_case_5(base),), (TABLE,), 1))
    case, before = corrected.cases[5], base.cases[5]
    assert case.analogous_statutory_confidence == "確認済み" and before.analogous_statutory_confidence == "要確認"
    assert case.sources[0] == TABLE.id and case.sources[1:] == before.sources  # cited first
    assert case.as_of == "2026-04-01" and corrected.sources[TABLE.id].title == TABLE.title
    assert [o.status for o in corrected.overlay_outcomes] == ["applied"]
    assert corrected.content_hash != base.content_hash and corrected.overlay_entries == ["cases.5"]
    assert normalize("準ずる法定事務: 予防接種法による給付の支給又は実費の徴収に関する事務（確認済み）") in case_chunk(case).text
    # The base knowledge is untouched, and every other fact is the same.
    assert base.cases[5].sources == before.sources and TABLE.id not in base.sources
    facts, original = knowledge_facts(corrected), knowledge_facts(base)
    assert {k: v for k, v in facts["cases"].items() if k != 5} == {k: v for k, v in original["cases"].items() if k != 5}
    assert facts["qa"] == original["qa"]


def test_an_empty_overlay_keeps_the_corpus_fingerprint(base) -> None:  # noqa: ANN001
    assert apply_overlay(base, Overlay()).content_hash == base.content_hash


def test_a_correction_that_no_longer_applies_is_reported_not_forced(base) -> None:  # noqa: ANN001
    stale = Correction(1, "cases.5.notes", before="出荷時の corpus にあった古い補足", after="新しい補足", reason="x")
    gone = Correction(2, "qa.qa-999.answer", before="a", after="b", reason="x")
    marked = Correction(3, "qa.qa-001.answer", before=base.qa[0].answer, after=base.qa[0].answer + "【要確認】追記",
                        confidence="確認済み", reason="x")
    unknown_source = Correction(4, "cases.6.aliases", before=base.cases[6].aliases, after=[*base.cases[6].aliases, "外国人保護"],
                                source="どこにもない資料", reason="x")
    corrected = apply_overlay(base, Overlay((stale, gone, marked, unknown_source), (), 4))
    statuses = {o.correction: o for o in corrected.overlay_outcomes}
    assert statuses[1].status == "conflict" and "補正したときの値" in statuses[1].message
    assert statuses[2].status == "missing" and "qa.qa-999" in statuses[2].message
    assert statuses[3].status == "invalid" and "【要確認】" in statuses[3].message
    assert statuses[4].status == "invalid" and "どこにもない資料" in statuses[4].message
    assert knowledge_facts(corrected) == knowledge_facts(base)
    assert corrected.content_hash == base.content_hash


def test_a_correction_already_in_the_corpus_is_recognised(base) -> None:  # noqa: ANN001
    once = apply_overlay(base, Overlay((confirm_case_5(base),), (TABLE,), 1))
    again = apply_overlay(once, Overlay((confirm_case_5(base, 2),), (TABLE,), 2))
    assert [o.status for o in again.overlay_outcomes] == ["in_corpus"]


def test_corrections_apply_in_order(base) -> None:  # noqa: ANN001
    aliases = base.cases[13].aliases
    first = Correction(1, "cases.13.aliases", before=aliases, after=[*aliases, "ひとり親応援給付"], reason="x")
    second = Correction(2, "cases.13.aliases", before=[*aliases, "ひとり親応援給付"], after=[*aliases, "ひとり親応援給付金"],
                        reason="x")
    corrected = apply_overlay(base, Overlay((first, second), (), 2))
    assert corrected.cases[13].aliases[-1] == "ひとり親応援給付金"
    skipped = apply_overlay(base, Overlay((second,), (), 2))  # the first taken back: the second no longer applies
    assert [o.status for o in skipped.overlay_outcomes] == ["conflict"]


def test_fact_paths_are_checked() -> None:
    assert parse_path("cases.(5).aliases").key == "5"
    assert parse_path("procedure.checklist.req-providers.why").confidence_field == "confidence"
    assert parse_path("cases.5.analogous_statutory_affair").confidence_field == "analogous_statutory_confidence"
    for bad, words in (("cases.x.aliases", "1〜35"), ("cases.5.seed_label", "補正できません"), ("foo.1.bar", "読めません")):
        with pytest.raises(OverlayError, match=words):
            parse_path(bad)


def test_the_overlay_file_form_round_trips_and_rejects_what_it_cannot_read(base) -> None:  # noqa: ANN001
    overlay = Overlay((confirm_case_5(base),), (TABLE,), 7)
    text = yaml.safe_dump(overlay.to_dict(), allow_unicode=True, sort_keys=False)
    assert Overlay.from_dict(yaml.safe_load(text)) == overlay
    with pytest.raises(OverlayError, match="format"):
        Overlay.from_dict({"format": 99})
    with pytest.raises(OverlayError, match="corrections の 1 番目: path がありません"):
        Overlay.from_dict({"format": 1, "corrections": [{"id": 1, "after": "x"}]})


def test_sources_curated_file_is_read_with_its_own_id_rule(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(DEFAULT_CORPUS_DIR, corpus)
    (corpus / "sources-curated.yaml").write_text(
        yaml.safe_dump([TABLE.model_dump(exclude_none=True)], allow_unicode=True), encoding="utf-8")
    assert load_knowledge(corpus).sources[TABLE.id].title == TABLE.title
    (corpus / "sources-extra.yaml").write_text(
        yaml.safe_dump([TABLE.model_dump(exclude_none=True)], allow_unicode=True), encoding="utf-8")
    with pytest.raises(Exception, match="sources-extra.yaml"):  # other source files keep the S-number rule
        load_knowledge(corpus)
