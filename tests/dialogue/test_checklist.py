"""The pre-filing checklist conversation, from the first question to the 事前相談シート."""

from __future__ import annotations

import copy
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from docx import Document

from assistant.dialogue.checklist import ChecklistService
from assistant.service import InputError

AFFAIR = [
    "子ども医療費助成事務",
    "〇〇市子ども医療費助成条例",
    "市長",
    "中学生までの子どもとその保護者",
    "子どもの保健の向上と福祉の増進",
    "医療費の自己負担分の助成",
]
CONTRACT_KEYS = {"session", "step", "question", "progress", "finished"}


@pytest.fixture
def service(db_assistant) -> ChecklistService:  # noqa: ANN001
    return ChecklistService(db_assistant)


def _through_affair(service: ChecklistService, session: str) -> dict:
    result = service.step(session, None)
    for answer in AFFAIR:
        result = service.step(session, answer)
    return result


def _item_steps(service: ChecklistService) -> list[str]:
    return [s.id for s in service.steps if s.kind == "item"]


def test_first_question_and_contract_keys(service: ChecklistService) -> None:
    result = service.step("c1", None)
    assert CONTRACT_KEYS <= set(result)
    assert result["step"] == "affair-name" and not result["finished"]
    assert result["progress"] == {"done": 0, "total": len(service.steps)}
    assert result["why"] and result["citation"]["quote"]
    assert isinstance(result["items"], list) and result["items"][0]["status"] == "未回答"


def test_items_come_from_the_corpus_with_verbatim_citations(service: ChecklistService, db_assistant) -> None:  # noqa: ANN001
    checklist = db_assistant.knowledge.procedure.checklist
    by_id = db_assistant.index.by_id
    derived = {"prep-case-number", "filing-type"}
    assert _item_steps(service) == [i.id for p in ("preparation", "filing", "review", "requirement") for i in checklist if i.phase == p and i.id not in derived]
    for item in checklist:
        if item.id in derived:
            continue
        step = service.steps[service.by_step[item.id]]
        assert step.question == item.question and step.why == item.why
        citation = service._citation(step)
        assert citation["source_id"] == f"check-{item.id}"
        assert citation["quote"] in by_id[f"check-{item.id}"].text


def test_whole_conversation_to_the_sheet(service: ChecklistService, tmp_path: Path) -> None:
    result = _through_affair(service, "full")
    assert result["step"] == "case"
    assert "事例(1)" in result["question"]
    assert result["citation"]["source_id"] == "check-prep-case-number"
    result = service.step("full", "はい")
    assert result["step"] == "notification"
    result = service.step("full", "まだです")
    assert result["message"].startswith("届出の種類は「新規」")
    answers = {"prep-budget": "検討中です", "prep-system": "いいえ", "filing-window": "未定"}
    while result["step"] != "schedule":
        result = service.step("full", answers.get(result["step"], "はい"))
    result = service.step("full", "2026年10月")
    assert result["finished"] and result["step"] == "done"
    assert result["progress"]["done"] == result["progress"]["total"]
    statuses = {i["step"]: i["status"] for i in result["items"]}
    assert statuses["prep-budget"] == "要確認" and statuses["prep-system"] == "未" and statuses["prep-ordinance"] == "済"

    markdown = service.sheet_markdown("full")
    for heading in ("事務の概要", "当てはまる事例と判断理由", "届出の種類", "チェックリストの状況", "スケジュール", "確認事項", "出典"):
        assert heading in markdown
    assert "子ども医療費助成事務" in markdown and "事例(1)" in markdown and "新規の届出" in markdown
    assert "| 未 | 設備導入・システム改修の検討" in markdown
    assert "| 要確認 | 予算化の検討" in markdown
    assert "2025年12月ごろ" in markdown  # forms about 10 months before October 2026
    assert re.search(r"次の受付期間: 【要確認】", markdown)
    assert re.search(r"作成日: \d{4}-\d{2}-\d{2}", markdown)

    md_path = service.export("full", "md", tmp_path / "out" / "sheet.md")
    assert md_path.read_text(encoding="utf-8") == markdown
    docx_path = service.export("full", "docx", tmp_path / "out" / "sheet.docx")
    document = Document(str(docx_path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    paragraphs = "\n".join(p.text for p in document.paragraphs)
    assert "事前相談シート" in paragraphs
    assert "子ども医療費助成事務" in cells
    for label in ("番号利用条例への追加", "予算化の検討", "根拠規範の公布", "誤記・添付漏れの確認", "書類の不備"):
        assert any(cell.startswith(label) for cell in cells), label
    assert {"済", "未", "要確認"} <= set(cells)
    assert "新規の届出" in paragraphs and "2025年12月ごろ" in paragraphs


def test_resume_after_restart(db_assistant) -> None:  # noqa: ANN001
    first = ChecklistService(db_assistant)
    _through_affair(first, "resume")
    first.step("resume", "はい")
    del first
    restarted = ChecklistService(copy.copy(db_assistant))  # new objects, same database file
    result = restarted.step("resume", None)
    assert result["step"] == "notification"
    assert result["message"] == "前回の続きから再開します。"
    assert result["progress"]["done"] == 7
    result = restarted.step("resume", "既に届出済みです")
    assert result["step"] == "notification"  # a follow-up question on the same step
    assert "変わるのは何" in result["question"]
    result = ChecklistService(copy.copy(db_assistant)).step("resume", "照会する情報を追加します")
    assert result["step"] == "prep-ordinance"
    assert "変更" in result["message"]


def test_back_skip_and_change(service: ChecklistService) -> None:
    _through_affair(service, "nav")
    service.step("nav", "はい")
    service.step("nav", "まだです")
    result = service.step("nav", "はい")  # prep-ordinance
    assert result["step"] == "prep-budget"
    result = service.step("nav", "スキップ")
    assert result["step"] == "prep-system" and "スキップ" in result["message"]
    result = service.step("nav", "戻る")
    assert result["step"] == "prep-budget" and result["current_answer"] == "（スキップ）"
    result = service.step("nav", "はい、予算化済みです")
    assert result["step"] == "prep-system"
    result = service.step("nav", "いいえ")
    result = service.step("nav", "事務の名称の回答を変更")
    assert result["step"] == "affair-name" and "子ども医療費助成事務" in result["message"]
    result = service.step("nav", "こども医療費助成事業")
    assert result["step"] == "prep-pia"  # back to the first unanswered question
    result = service.step("nav", "prep-ordinance")  # a step id jumps too
    assert result["step"] == "prep-ordinance"
    result = service.step("nav", "いいえ")
    assert result["step"] == "prep-pia"
    statuses = {i["step"]: (i["status"], i["answer"]) for i in result["items"]}
    assert statuses["prep-ordinance"] == ("未", "いいえ")
    assert statuses["prep-budget"][0] == "済"
    assert statuses["affair-name"] == ("済", "こども医療費助成事業")


def test_case_confirmation_no_then_number(service: ChecklistService) -> None:
    result = _through_affair(service, "case")
    first_candidate = re.search(r"事例\((\d+)\)", result["question"]).group(1)
    result = service.step("case", "いいえ")
    assert result["step"] == "case"
    assert f"事例({first_candidate})" not in result["question"]
    result = service.step("case", "99")
    assert result["step"] == "case" and "ありません" in result["message"]
    result = service.step("case", "いいえ、事例10です")
    assert result["step"] == "notification"
    assert "事例(10)" in service.sheet_markdown("case")


def test_notification_type_stated_directly_and_unknown_schedule(service: ChecklistService) -> None:
    _through_affair(service, "direct")
    service.step("direct", "はい")
    result = service.step("direct", "差替えです")
    assert "届出書の差替え" in result["message"]
    while not result["finished"]:
        result = service.step("direct", "スキップ" if result["step"] != "schedule" else "未定")
    markdown = service.sheet_markdown("direct")
    assert "連携開始の希望時期: 【要確認】" in markdown
    assert "差替えの受付" in markdown
    assert markdown.count("（要確認）") >= 10  # skipped items are open questions


def test_personal_data_in_answers_is_masked(service: ChecklistService) -> None:
    service.step("mask", None)
    service.step("mask", "子ども医療費助成（担当 03-1234-5678）")
    answers = [a.answer for a in service.store.checklist_answers("mask")]
    assert answers == ["子ども医療費助成(担当 [電話番号マスク済])"]


def test_export_errors(service: ChecklistService, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        service.export("no-such-session", "md", tmp_path / "x.md")
    service.step("fmt", None)
    with pytest.raises(InputError):
        service.export("fmt", "pdf", tmp_path / "x.pdf")
    partial = service.sheet_markdown("fmt")
    assert "（未回答）" in partial and "当てはまる事例（事例番号）" in partial


def test_a_failed_write_loses_only_the_answer_being_written(db_assistant, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    service = ChecklistService(db_assistant)
    service.step("crash", None)
    service.step("crash", "子ども医療費助成事務")
    service.step("crash", "子ども医療費助成条例")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("process killed")

    monkeypatch.setattr(service.store, "save_checklist", broken)
    with pytest.raises(RuntimeError):
        service.step("crash", "市長")
    resumed = ChecklistService(copy.copy(db_assistant)).step("crash", None)
    assert resumed["step"] == "affair-body" and resumed["progress"]["done"] == 2


# -- hostile ids and text ------------------------------------------------------------------------------
TRAVERSAL = "../../../../../outside/x"


def test_a_session_id_that_leaves_the_folder_is_refused(service: ChecklistService, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="セッション ID"):
        service.step(TRAVERSAL, None)
    with pytest.raises(InputError, match="セッション ID"):
        service.export(TRAVERSAL, "md", tmp_path / "exports" / "sheet.md")
    assert service.store.list_sessions("checklist") == []
    assert not (tmp_path / "exports").exists()


def test_control_characters_in_answers_are_dropped_before_storage_and_export(service: ChecklistService, tmp_path: Path) -> None:
    service.step("ctl", None)
    service.step("ctl", "子ども医療費\x00助成\x07事務\x1b[31m")
    service.step("ctl", "〇〇市\x0b子ども医療費助成条例\udc80")
    stored = [a.answer for a in service.store.checklist_answers("ctl")]
    assert stored == ["子ども医療費助成事務[31m", "〇〇市子ども医療費助成条例"]
    with pytest.raises(InputError, match="読み取れる文字"):
        service.step("ctl", "\x00\x01\x02")
    docx_path = service.export("ctl", "docx", tmp_path / "sheet.docx")
    cells = [c.text for t in Document(str(docx_path)).tables for r in t.rows for c in r.cells]
    assert "子ども医療費助成事務[31m" in cells and "〇〇市子ども医療費助成条例" in cells


# -- one input, one transaction -------------------------------------------------------------------------
def test_a_step_that_fails_records_nothing_and_the_retry_goes_to_the_same_question(
    db_assistant, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    service = ChecklistService(db_assistant)
    service.step("atomic", None)
    for answer in AFFAIR[:-1]:
        service.step("atomic", answer)

    def failing(text: str) -> dict:
        raise RuntimeError("classifier failed")

    monkeypatch.setattr(db_assistant, "classify", failing)  # the case question after the last affair answer
    with pytest.raises(RuntimeError):
        service.step("atomic", AFFAIR[-1])
    resumed = service.step("atomic", None)
    assert resumed["step"] == "affair-benefit" and resumed["progress"]["done"] == len(AFFAIR) - 1
    assert len(service.store.checklist_answers("atomic")) == len(AFFAIR) - 1
    monkeypatch.undo()
    retried = service.step("atomic", AFFAIR[-1])
    assert retried["step"] == "case"
    last = service.store.checklist_answers("atomic")[-1]
    assert (last.step, last.answer) == ("affair-benefit", AFFAIR[-1])


def _stored(service: ChecklistService, session: str) -> dict[str, str]:
    state = service.store.load_session("checklist", session).state
    return {step: entry["answer"] for step, entry in state["answers"].items()}


def _at_once(service: ChecklistService, session: str, answers: list[str], **options: str) -> list[dict]:
    start = threading.Barrier(len(answers))

    def send(answer: str) -> dict:
        start.wait()
        return service.step(session, answer, **options)

    with ThreadPoolExecutor(len(answers)) as pool:
        return list(pool.map(send, answers))


def test_six_simultaneous_answers_are_each_kept_or_refused(service: ChecklistService) -> None:
    service.step("six", None)
    answers = [f"同時の回答{n}" for n in range(6)]
    results = _at_once(service, "six", answers)
    accepted = [a for a, r in zip(answers, results) if r["accepted"]]
    refused = [r for r in results if not r["accepted"]]
    stored = _stored(service, "six")
    assert sorted(stored.values()) == sorted(accepted), "every accepted answer is kept, and only those"
    assert len(set(stored)) == len(accepted)  # each under its own question
    rows = service.store.checklist_answers("six")
    assert len(rows) == len(stored) and {a.step: a.answer for a in rows} == stored  # each row under its question
    assert all("記録していません" in r["message"] for r in refused)
    assert len(accepted) + len(refused) == 6 and accepted


def test_simultaneous_answers_to_the_question_shown_keep_exactly_one(service: ChecklistService) -> None:
    service.step("shown", None)
    results = _at_once(service, "shown", [f"回答{n}" for n in range(6)], expected_step="affair-name")
    assert sum(r["accepted"] for r in results) == 1
    assert list(_stored(service, "shown")) == ["affair-name"]
    assert len(service.store.checklist_answers("shown")) == 1


def test_an_answer_overtaken_between_read_and_write_is_refused(db_assistant, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    slow, other = ChecklistService(db_assistant), ChecklistService(copy.copy(db_assistant))
    slow.step("race", None)
    real_load = slow.store.load_session
    calls = []

    def load_then_overtaken(kind: str, session_id: str):  # noqa: ANN202
        record = real_load(kind, session_id)
        if not calls:
            other.step("race", "先に届いた回答")  # commits while `slow` works on its stale read
        calls.append(record)
        return record

    monkeypatch.setattr(slow.store, "load_session", load_then_overtaken)
    result = slow.step("race", "後から届いた回答")
    assert not result["accepted"] and "記録していません" in result["message"]
    assert result["step"] == "affair-basis"  # the view shows the question that is current now
    assert _stored(slow, "race") == {"affair-name": "先に届いた回答"}


def test_an_unknown_expected_step_is_refused(service: ChecklistService) -> None:
    service.step("exp", None)
    with pytest.raises(InputError, match="no-such-step"):
        service.step("exp", "はい", expected_step="no-such-step")
    assert service.step("exp", "子ども医療費助成事務", expected_step="affair-name")["accepted"]
