"""Corrections kept in the database: validated, with history (who, when, before / after, why), revertible,
audited, exported as an overlay that merges into corpus/ files giving the same knowledge."""

import shutil
from pathlib import Path

import pytest
import yaml

from assistant.audit import KNOWLEDGE_CHANGE, Actor, AuditLog
from assistant.config import DEFAULT_CORPUS_DIR, load_settings
from assistant.curation.curator import Curator, CurationError, SetRequest
from assistant.curation.merge import MergeError, merge_overlay, read_overlay
from assistant.curation.effective import revision_stamp
from assistant.knowledge import load_knowledge
from assistant.knowledge.overlay import Overlay, apply_overlay, knowledge_facts

ADMIN = Actor(user="kanri", role="管理者", client="Web アプリ")
OFFICIAL = dict(source="独自利用事務の事例一覧.pdf", page="p.3", as_of="2026-04-01")


@pytest.fixture
def curator(tmp_path: Path) -> Curator:
    settings = load_settings(home=tmp_path / "home")
    settings.ensure_dirs()
    return Curator(settings)


def confirm_case_5(curator: Curator, **extra: object) -> tuple:
    request = SetRequest("cases.5.analogous_statutory_affair", confidence="確認済み", reason="公式の事例一覧で確認",
                         **(OFFICIAL | extra))  # type: ignore[arg-type]
    return curator.set(request, ADMIN)


def test_a_correction_is_recorded_with_who_when_before_after_why_and_audited(curator: Curator) -> None:
    stamp = revision_stamp(curator.settings)
    planned, row = confirm_case_5(curator)
    assert revision_stamp(curator.settings) != stamp  # running processes see the change
    assert (row.user, row.role, row.path, row.confidence_before, row.confidence) == (
        "kanri", "管理者", "cases.5.analogous_statutory_affair", "要確認", "確認済み")
    assert row.before == row.after and row.reason == "公式の事例一覧で確認" and row.at is not None
    assert ("確度", "要確認", "確認済み") in planned.diff()
    shown = curator.show("cases.5.analogous_statutory_affair")
    assert shown["confidence"] == "確認済み" and shown["as_of"] == "2026-04-01"
    first = shown["sources"][0]
    assert first["id"] == "独自利用事務の事例一覧.pdf p.3（2026-04-01時点）" and first["curated"] and first["page"] == "p.3"
    assert [h["id"] for h in shown["history"]] == [row.id] and shown["history"][0]["status"] == "適用中"
    events = AuditLog.for_settings(curator.settings).events(action=KNOWLEDGE_CHANGE)
    assert len(events) == 1 and events[0].user == "kanri" and events[0].sources == [first["id"]]
    assert "要確認」→「確認済み" in events[0].detail and "公式の事例一覧で確認" in events[0].detail


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SetRequest("cases.5.analogous_statutory_affair", confidence="確認済み", reason="r"), "出典"),
        (SetRequest("cases.5.analogous_statutory_affair", confidence="確認済み", source="事例一覧.pdf", reason="r"),
         "--as-of"),
        (SetRequest("cases.5.aliases", add=["予防接種助成"], reason=""), "理由"),
        (SetRequest("cases.5.aliases", reason="r"), "変更する内容がありません"),
        (SetRequest("cases.5.aliases", add=["連絡先 090-1234-5678"], reason="r"), "個人情報"),
        (SetRequest("cases.5.aliases", remove=["ない別名"], reason="r"), "ありません"),
        (SetRequest("cases.5.description", clear=True, reason="r"), "空にできません"),
        (SetRequest("cases.5.analogous_statutory_affair", confidence="確認済み", source="S999", reason="r"), "S999"),
        (SetRequest("cases.5.analogous_statutory_affair", confidence="確かめた", reason="r"), "確度"),
        (SetRequest("cases.5.as_of", "2030-01-01", reason="r"), "補正できません"),
        (SetRequest("cases.36.aliases", add=["x"], reason="r"), "cases.36"),
        (SetRequest("qa.qa-001.answer", "【要確認】書き換えた回答", confidence="確認済み", source="S2", reason="r"), "【要確認】"),
        (SetRequest("cases.5.analogous_statutory_affair", confidence="確認済み", as_of="2026-13-01", source="x", reason="r"),
         "YYYY-MM-DD"),
    ],
)
def test_a_correction_that_breaks_a_rule_is_refused_with_a_clear_message(curator: Curator, request_: SetRequest,
                                                                          message: str) -> None:
    with pytest.raises(CurationError, match=message):
        curator.set(request_)
    assert curator.store.revision() == 0


def test_revert_restores_the_fact_and_is_itself_history(curator: Curator) -> None:
    base = knowledge_facts(curator.base())
    _, first = confirm_case_5(curator)
    _, second = curator.set(SetRequest("cases.5.aliases", add=["任意予防接種助成金"], reason="通称の追加"), ADMIN)
    assert knowledge_facts(curator.knowledge()) != base
    with pytest.raises(CurationError, match="取り消しの記録"):
        curator.revert([curator.revert([second.id], "誤って追加", ADMIN)[0].id], "x")
    curator.revert([first.id], "別の資料で確かめる", ADMIN)
    assert knowledge_facts(curator.knowledge()) == base
    with pytest.raises(CurationError, match="既に取り消されています"):
        curator.revert([first.id], "二度目")
    log = curator.log()
    assert [(r["action"], r["reverts"]) for r in log] == [("set", None), ("set", None), ("revert", second.id), ("revert", first.id)]
    assert log[0]["status"].startswith("取り消し済み") and log[3]["reason"] == "別の資料で確かめる"


def test_a_change_made_later_on_the_same_fact_must_be_reverted_first(curator: Curator) -> None:
    _, first = curator.set(SetRequest("cases.13.aliases", add=["ひとり親応援給付"], reason="追加"))
    _, second = curator.set(SetRequest("cases.13.aliases", add=["ひとり親応援金"], reason="追加"))
    with pytest.raises(CurationError, match=f"#{second.id}"):
        curator.revert([first.id], "戻す")
    curator.revert([first.id, second.id], "両方戻す")
    assert curator.knowledge().cases[13].aliases == curator.base().cases[13].aliases


def test_a_correction_that_no_longer_applies_to_an_upgraded_corpus_is_reported(curator: Curator, tmp_path: Path) -> None:
    _, row = curator.set(SetRequest("cases.5.notes", "公式の資料で確かめた補足。", reason="補足を直す"))
    upgraded = tmp_path / "corpus-v2"
    shutil.copytree(DEFAULT_CORPUS_DIR, upgraded)
    path = upgraded / "cases.yaml"
    text = path.read_text(encoding="utf-8")
    old_notes = curator.base().cases[5].notes
    path.write_text(text.replace(old_notes, "新しい版の corpus で書き直された補足。【要確認】"), encoding="utf-8")
    after_upgrade = Curator(load_settings(home=curator.settings.home, corpus_dir=upgraded))
    problems = after_upgrade.problems()
    assert [(p.correction, p.status) for p in problems] == [(row.id, "conflict")]
    assert after_upgrade.knowledge().cases[5].notes.startswith("新しい版")  # the corpus's text, not forced over
    assert "適用できません" in after_upgrade.log()[0]["status"]


def test_export_round_trips_into_corpus_files(curator: Curator, tmp_path: Path) -> None:
    confirm_case_5(curator)
    curator.set(SetRequest("cases.5.information_providers", "市町村長、都道府県知事", reason="提供者を記入"))
    curator.set(SetRequest("cases.13.aliases", add=["ひとり親応援給付"], reason="通称"))
    curator.set(SetRequest("cases.7.case_number", "31-1", confidence="確認済み", source="S7", reason="西宮市の公表"))
    qa = curator.base().qa[1]
    curator.set(SetRequest(f"qa.{qa.id}.answer", qa.answer + " 詳しくは委員会の手続ページで確認してください。",
                           source=qa.sources[0], reason="案内を追加"))
    curator.set(SetRequest("procedure.checklist.req-providers.why", "照会先と情報の範囲を事例に照らして確かめるためです。",
                           confidence="要確認", reason="言い換え（出典の文言と照らすまで要確認）"))
    curator.set(SetRequest("procedure.schedule.windows-3-per-year.fact", confidence="確認済み",
                           source="個人情報保護委員会「独自利用事務の情報連携に係る届出」ページ", as_of="2026-05-01",
                           reason="ページで確認"))
    exported = tmp_path / "overlay.yaml"
    _, count = curator.export(exported)
    assert count == 7 and "# 知識ベースの補正" in exported.read_text(encoding="utf-8")
    corpus = tmp_path / "corpus"
    shutil.copytree(DEFAULT_CORPUS_DIR, corpus)
    report = merge_overlay(read_overlay(exported), corpus)
    assert report.files == ["cases.yaml", "procedure.yaml", "qa.yaml", "sources-curated.yaml"] and not report.skipped
    merged = load_knowledge(corpus)
    assert knowledge_facts(merged) == knowledge_facts(curator.knowledge())
    # Only the corrected lines changed: the rest of each file (comments, layout) is as shipped.
    shipped = (DEFAULT_CORPUS_DIR / "cases.yaml").read_text(encoding="utf-8").splitlines()
    rewritten = (corpus / "cases.yaml").read_text(encoding="utf-8").splitlines()
    assert shipped[:4] == rewritten[:4] and len(set(rewritten) - set(shipped)) <= 12
    # The stored corrections now find their facts in the corpus: nothing is applied twice.
    again = apply_overlay(merged, read_overlay(exported))
    assert {o.status for o in again.overlay_outcomes} == {"in_corpus"}


def test_merge_refuses_an_unreadable_overlay(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"format": 1, "corrections": [{"id": 1, "path": "cases.5.nope", "after": 1}]}),
                   encoding="utf-8")
    with pytest.raises(MergeError, match="補正できません"):
        read_overlay(bad)
    assert Overlay.from_dict({"format": 1}).empty


def test_a_change_planned_before_another_administrators_change_is_refused(curator: Curator) -> None:
    mine = curator.plan(SetRequest("cases.13.aliases", add=["ひとり親応援給付"], reason="追加"))
    curator.set(SetRequest("cases.13.aliases", add=["ひとり親応援金"], reason="別の管理者が先に追加"))
    with pytest.raises(CurationError, match="確認のあとに変わりました"):
        curator.commit([mine])
    assert curator.knowledge().cases[13].aliases[-1] == "ひとり親応援金" and curator.store.revision() == 1
