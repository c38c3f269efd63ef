"""The pre-filing checklist conversation and its result, the 事前相談シート.

One question at a time: the affair (name, basis norms, executing body, target persons, purpose,
benefit) → the fitting case type (Assistant.classify, confirmed by the user) → the notification
type → the checklist items of corpus/procedure.yaml by phase → the schedule. Every input is
committed with the new state in one transaction before the next question is returned (nothing
when a step fails), so a session resumes by id; concurrent inputs to one session never overwrite
each other (see `ChecklistService.step`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.advise.matching import fold
from assistant.advise.notify import advise_notification
from assistant.citations import cite
from assistant.dialogue.chat import canonical_answer, clarification_kind, reply_polarity
from assistant.dialogue.export import (
    STATUS_CHECK,
    STATUS_DONE,
    STATUS_TODO,
    Sheet,
    SheetItem,
    check_format,
    render_sheet_markdown,
    write_sheet_docx,
    write_text,
)
from assistant.dialogue.store import AnswerRow, DialogueStore, SessionConflict, StoreError, state_revision
from assistant.knowledge.chunks import NOTIFICATION_NAMES
from assistant.textnorm import mask_personal_data
from assistant.validation import clean_text, validate_session_id

KIND = "checklist"
DONE = "done"
FINISHED_QUESTION = (
    "チェックリストはすべて終わりました。事前相談シートを Markdown または Word（DOCX）で書き出せます。"
    "回答を直す場合は「○○の回答を変更」と入力してください。"
)
START_MESSAGE = "事前相談シートの作成を始めます。質問に一つずつお答えください（「スキップ」「戻る」「○○の回答を変更」も使えます）。"
UNANSWERED = "未回答"
MAX_ANSWER_CHARS = 2000
MAX_NOTIFICATION_ATTEMPTS = 3
MAX_CONFLICT_RETRIES = 5
PHASE_NAMES = {
    "affair": "事務の概要",
    "case": "当てはまる事例",
    "notification": "届出の種類",
    "preparation": "事前準備",
    "filing": "届出時",
    "review": "審査時",
    "requirement": "要件の確認",
    "schedule": "スケジュール",
}
ITEM_PHASES = ("preparation", "filing", "review", "requirement")
# Checklist items the conversation answers itself (from the case and notification steps).
DERIVED_ITEMS = {"prep-case-number": "case", "filing-type": "notification"}

# The affair questions are the conversation's own; why each matters is quoted from the corpus.
AFFAIR_STEPS: list[tuple[str, str, str, str, list[str]]] = [
    ("affair-name", "事務の名称", "届出を予定している事務の名称を教えてください（例: 子ども医療費助成事務）。", "flow-preparation", ["番号利用条例"]),
    ("affair-basis", "根拠規範", "その事務の根拠規範（条例・規則・要綱の名称）を教えてください。", "check-filing-norms-promulgated", ["理由"]),
    ("affair-body", "実施機関", "その事務を処理する執行機関（市長・教育委員会など）はどこですか？", "check-req-querier", ["理由"]),
    ("affair-targets", "対象者", "事務の対象者はどなたですか（例: 中学生までの子どもとその保護者）？", "check-req-target-persons", ["理由"]),
    ("affair-purpose", "目的", "根拠規範に書かれている事務の目的を教えてください（例: 子どもの保健の向上と福祉の増進）。", "check-req-purpose-terms", ["理由"]),
    ("affair-benefit", "給付の内容", "給付の内容を教えてください（例: 医療費の自己負担分の助成）。", "check-req-content-similarity", ["理由"]),
]

StepKind = Literal["affair", "case", "notification", "item", "schedule"]

_SKIP = re.compile(r"^(スキップ|skip|とばす|飛ばす|パス|pass|後で|あとで|次へ)$")
_BACK = re.compile(r"^(戻る|もどる|back|前へ|前に戻る|ひとつ前|一つ前|前の質問)$")
_CHANGE_ANSWER = re.compile(r"^(?P<target>.+?)の(回答|答え)を?(変更|修正|訂正|やり直)")
_CHANGE_EXACT = re.compile(r"^(?P<target>.+?)を(変更|修正|訂正|やり直)(する|します|したい|して)?$")
_CASE_NUMBER = re.compile(r"(?:事例|^)\(?(\d{1,2})\)?(?:番|です|。|$)")
_NO_FIT = re.compile(r"該当なし|当てはまらない|わから|分から|不明|ない")
_MONTH = re.compile(r"(?:(?:令和|r)(?P<ey>\d{1,2}|元)|(?P<y>20\d{2}))(?:年|[/.-])(?P<m>\d{1,2})(?:月|$)")
_EXPLICIT_TYPES = [
    ("replace", re.compile(r"差し?替")),
    ("discontinue", re.compile(r"中止")),
    ("change", re.compile(r"変更の届|^変更(です)?$")),
    ("new", re.compile(r"新規")),
]


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    phase: str
    label: str
    question: str
    why: str
    cite_id: str
    needles: tuple[str, ...] = ("理由",)


@dataclass
class _Turn:
    """One input being handled: the session's state (changed in place) and the inputs to record with it."""

    session_id: str
    state: dict[str, Any]
    inputs: list[AnswerRow] = field(default_factory=list)


def _normalize_answer(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:MAX_ANSWER_CHARS]


class ChecklistService:
    def __init__(self, assistant: Any, *, store: DialogueStore | None = None) -> None:
        self.assistant = assistant
        self.knowledge = assistant.knowledge
        self.store = store or DialogueStore.for_settings(assistant.settings)
        self.steps = self._build_steps()
        self.by_step = {step.id: index for index, step in enumerate(self.steps)}

    # -- the steps, from the corpus --------------------------------------------------------------
    def _item_why(self, item_id: str) -> str:
        for item in self.knowledge.procedure.checklist:
            if item.id == item_id:
                return item.why
        return ""

    def _build_steps(self) -> list[Step]:
        steps: list[Step] = []
        for step_id, label, question, cite_id, needles in AFFAIR_STEPS:
            item_id = cite_id.removeprefix("check-")
            why = self._item_why(item_id) if cite_id.startswith("check-") else ""
            steps.append(Step(step_id, "affair", "affair", label, question, why, cite_id, tuple(needles)))
        case_item, type_item = "prep-case-number", "filing-type"
        steps.append(Step("case", "case", "case", "当てはまる事例", "", self._item_why(case_item), f"check-{case_item}"))
        default_question = advise_notification("").clarifying_question or ""
        steps.append(
            Step("notification", "notification", "notification", "届出の種類", default_question, self._item_why(type_item), f"check-{type_item}")
        )
        for phase in ITEM_PHASES:
            for item in self.knowledge.procedure.checklist:
                if item.phase == phase and item.id not in DERIVED_ITEMS:
                    steps.append(Step(item.id, "item", phase, item.label, item.question, item.why, f"check-{item.id}"))
        schedule = {s.id: s for s in self.knowledge.procedure.schedule}
        facts = " ".join(schedule[k].fact for k in ("forms-10-months", "windows-3-per-year") if k in schedule)
        steps.append(
            Step(
                "schedule",
                "schedule",
                "schedule",
                "連携開始の希望時期",
                f"最後にスケジュールを確認します。{facts} 情報連携を始めたい時期（例: 2026年10月）を教えてください。未定の場合は「未定」と入力してください。",
                schedule["forms-10-months"].fact if "forms-10-months" in schedule else "",
                "schedule-forms-10-months",
                ("10か月",),
            )
        )
        return steps

    # -- public API ------------------------------------------------------------------------------
    def step(self, session_id: str, answer: str | None, *, expected_step: str | None = None) -> dict[str, Any]:
        """Start, resume or advance a checklist; one input is one transaction (all or nothing).

        The input is applied to the question that was current when it arrived (or `expected_step`,
        the step the user was shown). When another request moved the session on first, nothing is
        recorded and the view says so (`accepted` is false).
        """
        session_id = validate_session_id(session_id)
        text = self._clean_answer(answer)
        if expected_step is not None and expected_step != DONE and expected_step not in self.by_step:
            raise StoreError(f"質問 {expected_step!r} はチェックリストにありません")
        asked: tuple[Any, ...] | None = None
        for _attempt in range(MAX_CONFLICT_RETRIES):
            record = self.store.load_session(KIND, session_id)
            turn = _Turn(session_id, record.state if record else self._new_state())
            current = self._asked(turn.state)
            if asked is None:
                asked = current
                if expected_step is not None and text is not None and current[0] != expected_step:
                    return self._rejected(turn, text, expected_step)
            if text is not None and current != asked:
                return self._rejected(turn, text, str(asked[0]))
            if text is None:
                resumed = "前回の続きから再開します。" if turn.state["answers"] else ""
                message = START_MESSAGE if record is None else resumed
            else:
                message = self._handle(turn, text)
            view = self._view(turn, message)
            if record is not None and not turn.inputs and state_revision(turn.state) == record.revision:
                return view
            try:
                self.store.save_checklist(
                    session_id, turn.state, turn.inputs, expected_revision=record.revision if record else None
                )
            except SessionConflict:
                continue  # read again; the input still applies if its question is still the current one
            return view
        raise SessionConflict(f"セッション {session_id} には同時に多くの操作が届いたため、この入力は記録していません。もう一度お試しください")

    @staticmethod
    def _clean_answer(answer: str | None) -> str | None:
        """The answer as it is stored (control codes removed, whitespace folded, personal data masked); None if empty."""
        if answer is None:
            return None
        if not isinstance(answer, str):
            raise StoreError("回答は文字列で入力してください")
        text = _normalize_answer(clean_text(answer))
        if not text:
            if answer.strip():
                raise StoreError("回答に読み取れる文字がありません。テキストで入力してください")
            return None
        masked, _ = mask_personal_data(text)
        return masked

    def _asked(self, state: dict[str, Any]) -> tuple[Any, ...]:
        """What the user is being asked: the step, and for the case and notification steps the current variant."""
        step = self._current(state)
        if step is None:
            return (DONE,)
        if step.kind == "case":
            case = state.get("case") or {}
            return (step.id, case.get("affair_key"), case.get("offer"))
        if step.kind == "notification":
            return (step.id, state["notification"]["attempts"])
        return (step.id,)

    def _rejected(self, turn: _Turn, text: str, answered_step: str) -> dict[str, Any]:
        label = self.steps[self.by_step[answered_step]].label if answered_step in self.by_step else "完了"
        message = (
            f"回答「{text[:40]}」は記録していません。質問「{label}」には、別の画面から先に回答が届いたため、質問が進んでいます。"
            "表示されている現在の質問を確認してからお答えください。"
        )
        return self._view(turn, message) | {"accepted": False}

    def sheet_markdown(self, session_id: str) -> str:
        return render_sheet_markdown(self.sheet(session_id))

    def export(self, session_id: str, fmt: str, output: Path) -> Path:
        fmt = check_format(fmt, ("md", "docx"))
        sheet = self.sheet(session_id)
        if fmt == "md":
            return write_text(render_sheet_markdown(sheet), Path(output))
        return write_sheet_docx(sheet, Path(output))

    # -- state --------------------------------------------------------------------------------------
    def _new_state(self) -> dict[str, Any]:
        return {"cursor": self.steps[0].id, "answers": {}, "case": None, "schedule": {},
                "notification": {"text": "", "question": None, "attempts": 0, "type": None, "reasons": []}}

    def _load(self, session_id: str) -> dict[str, Any]:
        record = self.store.load_session(KIND, validate_session_id(session_id))
        if record is None:
            raise StoreError(f"セッション {session_id} のチェックリストは見つかりません。先に `assistant checklist --session {session_id}` で開始してください")
        return record.state

    def _position(self, state: dict[str, Any]) -> int:
        """The current step's index; the cursor is kept as a step id so corpus edits cannot shift it."""
        cursor = state["cursor"]
        if cursor == DONE:
            return len(self.steps)
        if cursor in self.by_step:
            return self.by_step[cursor]
        unanswered = [i for i, step in enumerate(self.steps) if step.id not in state["answers"]]
        return (unanswered or [len(self.steps)])[0]

    def _move(self, state: dict[str, Any], index: int) -> None:
        state["cursor"] = self.steps[index].id if index < len(self.steps) else DONE

    def _current(self, state: dict[str, Any]) -> Step | None:
        index = self._position(state)
        return self.steps[index] if index < len(self.steps) else None

    def _advance(self, state: dict[str, Any]) -> None:
        answered = state["answers"]
        cursor = self._position(state)
        later = [i for i in range(cursor + 1, len(self.steps)) if self.steps[i].id not in answered]
        earlier = [i for i in range(0, cursor + 1) if self.steps[i].id not in answered]
        self._move(state, (later or earlier or [len(self.steps)])[0])

    def _record(self, turn: _Turn, step: Step, answer: str, status: str) -> None:
        """The step's answer, then the next unanswered step (stored with the new state when the turn ends)."""
        turn.state["answers"][step.id] = {"answer": answer, "status": status}
        self._advance(turn.state)
        turn.inputs.append(AnswerRow(step.id, answer, status))

    def _log(self, turn: _Turn, step: Step, answer: str) -> None:
        """An input that does not finish the step (a rejected candidate, a partial answer)."""
        turn.inputs.append(AnswerRow(step.id, answer, UNANSWERED))

    # -- one input ----------------------------------------------------------------------------------
    def _handle(self, turn: _Turn, answer: str) -> str:
        state = turn.state
        folded = fold(answer)
        if _BACK.match(folded):
            self._move(state, max(0, self._position(state) - 1))
            return "一つ前の質問に戻りました。"
        target = self._change_target(answer)
        if target is not None:
            self._move(state, target)
            step = self.steps[target]
            current = state["answers"].get(step.id, {}).get("answer")
            return f"「{step.label}」の回答を変更します。" + (f"（現在の回答: {current}）" if current else "")
        step = self._current(state)
        if step is None:
            return "チェックリストはすべて終わっています。回答を直す場合は「○○の回答を変更」と入力してください。"
        if _SKIP.match(folded):
            self._record(turn, step, "（スキップ）", STATUS_CHECK)
            return f"「{step.label}」をスキップしました（要確認として残します）。"
        handler = {
            "affair": self._answer_affair,
            "case": self._answer_case,
            "notification": self._answer_notification,
            "item": self._answer_item,
            "schedule": self._answer_schedule,
        }[step.kind]
        return handler(turn, step, answer)

    def _change_target(self, answer: str) -> int | None:
        """The step a 「○○の回答を変更」 command (or a bare step id) names."""
        text = answer.strip().strip("「」")
        if text in self.by_step:
            return self.by_step[text]
        folded = fold(text)
        loose = _CHANGE_ANSWER.match(folded)
        match = loose or _CHANGE_EXACT.match(folded)
        if not match:
            return None
        target = match.group("target").strip("「」『』\"'")
        if target in self.by_step:
            return self.by_step[target]
        labels = [(index, fold(step.label)) for index, step in enumerate(self.steps)]
        for index, label in labels:
            if target == label:
                return index
        if loose and target:
            for index, label in labels:
                if target in label or label in target:
                    return index
        return None

    def _answer_affair(self, turn: _Turn, step: Step, answer: str) -> str:
        self._record(turn, step, answer, STATUS_DONE)
        return f"「{step.label}」を記録しました。"

    def _answer_item(self, turn: _Turn, step: Step, answer: str) -> str:
        polarity = reply_polarity(answer)
        status = {"yes": STATUS_DONE, "no": STATUS_TODO, "unsure": STATUS_CHECK}.get(polarity or "", STATUS_CHECK)
        self._record(turn, step, answer, status)
        return f"「{step.label}」を「{status}」として記録しました。"

    # -- the case step ------------------------------------------------------------------------------
    def _affair_text(self, state: dict[str, Any]) -> str:
        parts = [state["answers"].get(s[0], {}).get("answer", "") for s in AFFAIR_STEPS]
        return "。".join(p for p in parts if p and p != "（スキップ）")

    def _ensure_case(self, state: dict[str, Any]) -> dict[str, Any]:
        text = self._affair_text(state)
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        case = state.get("case")
        if case is not None and case.get("affair_key") == key:
            return case
        if text:
            result = self.assistant.classify(text[: self.assistant.settings.max_question_chars])
        else:
            result = {"candidates": [], "statutory": False, "no_fit": True}
        state["case"] = {
            "affair_key": key,
            "candidates": [
                {k: c[k] for k in ("case", "name", "reasons", "citations", "analogous_statutory_affair", "confidence")}
                for c in result["candidates"][:3]
            ],
            "statutory": result["statutory"],
            "statutory_affairs": [a["name"] for a in result.get("statutory_affairs", [])],
            "no_fit": result["no_fit"],
            "offer": 0,
            "confirmed": None,
            "confirmed_by": None,
            "note": result.get("clarifying_question"),
        }
        return state["case"]

    def _case_question(self, case: dict[str, Any]) -> str:
        notes = []
        if case["statutory"]:
            names = "、".join(case["statutory_affairs"])
            notes.append(f"入力された内容は法定事務（{names}）に当たる可能性があります。法定事務であれば独自利用事務の届出は不要です。")
        if case["note"]:
            notes.append(case["note"])
        if case["offer"] < len(case["candidates"]) and not case["no_fit"]:
            candidate = case["candidates"][case["offer"]]
            reason = candidate["reasons"][0] if candidate["reasons"] else ""
            notes.append(
                f"候補は事例({candidate['case']})「{candidate['name']}」です（{reason}）。"
                "この事例でよろしいですか？（はい／いいえ／別の事例番号）"
            )
        else:
            if case["no_fit"]:
                notes.append("公表されている事例のいずれにも明確には当てはまりませんでした。")
            notes.append("当てはまる事例の番号（1〜35）を入力してください。わからない場合は「わからない」と入力してください。")
        return "".join(notes)

    def _answer_case(self, turn: _Turn, step: Step, answer: str) -> str:
        state = turn.state
        case = self._ensure_case(state)
        polarity = reply_polarity(answer)
        number = _CASE_NUMBER.search(fold(answer))
        offering = case["offer"] < len(case["candidates"]) and not case["no_fit"]
        if number and int(number.group(1)) in self.knowledge.cases:
            chosen = int(number.group(1))
            case["confirmed"], case["confirmed_by"] = chosen, "利用者が事例番号を指定"
            self._record(turn, step, answer, STATUS_DONE)
            return f"事例({chosen})として記録しました。"
        if number:
            return f"事例({number.group(1)})はありません。1〜35 の番号を入力してください。"
        if offering and polarity == "yes":
            chosen = case["candidates"][case["offer"]]["case"]
            case["confirmed"], case["confirmed_by"] = chosen, "候補を利用者が確認"
            self._record(turn, step, answer, STATUS_DONE)
            return f"事例({chosen})として記録しました。"
        if offering and polarity == "no":
            case["offer"] += 1
            self._log(turn, step, answer)
            return "別の候補をご確認ください。"
        if polarity in {"no", "unsure"} or _NO_FIT.search(fold(answer)):
            case["confirmed"], case["confirmed_by"] = None, None
            self._record(turn, step, answer, STATUS_CHECK)
            return "事例は「要確認」として記録しました。委員会事務局への確認事項に加えます。"
        return "「はい」「いいえ」または事例番号でお答えください。"

    # -- the notification step ----------------------------------------------------------------------
    def _answer_notification(self, turn: _Turn, step: Step, answer: str) -> str:
        state = turn.state
        notice = state["notification"]
        folded = fold(answer)
        explicit = next((code for code, pattern in _EXPLICIT_TYPES if pattern.search(folded)), None)
        if explicit:
            notice.update(type=explicit, question=None, reasons=[f"利用者の回答: {answer}"])
            self._record(turn, step, answer, STATUS_DONE)
            return f"届出の種類を「{NOTIFICATION_NAMES[explicit]}」として記録しました。"
        question = notice["question"] or step.question
        canonical = canonical_answer(clarification_kind(question), answer)
        notice["text"] = f"{notice['text']}\n{canonical}{answer}".strip()
        notice["attempts"] += 1
        advice = advise_notification(notice["text"])
        if advice.notification_type:
            notice.update(type=advice.notification_type, question=None, reasons=advice.reasons)
            self._record(turn, step, answer, STATUS_DONE)
            return f"届出の種類は「{NOTIFICATION_NAMES[advice.notification_type]}」と考えられます。"
        if advice.clarifying_question and notice["attempts"] < MAX_NOTIFICATION_ATTEMPTS:
            notice.update(question=advice.clarifying_question, reasons=advice.reasons)
            self._log(turn, step, answer)
            return "もう少し教えてください。"
        notice.update(type=None, question=None, reasons=advice.reasons)
        self._record(turn, step, answer, STATUS_CHECK)
        return "届出の種類は決められませんでした。「要確認」として委員会事務局への確認事項に加えます。"

    # -- the schedule step --------------------------------------------------------------------------
    def _forms_lead_months(self) -> int | None:
        for fact in self.knowledge.procedure.schedule:
            if fact.id == "forms-10-months":
                match = re.search(r"(\d+)か月", fact.fact)
                return int(match.group(1)) if match else None
        return None

    def _answer_schedule(self, turn: _Turn, step: Step, answer: str) -> str:
        state = turn.state
        match = _MONTH.search(fold(answer))
        if not match or reply_polarity(answer) == "unsure":
            state["schedule"] = {"start": None}
            self._record(turn, step, answer, STATUS_CHECK)
            return "連携開始の時期は「要確認」として記録しました。"
        era = match.group("ey")
        year = int(match.group("y")) if match.group("y") else 2018 + (1 if era == "元" else int(era))
        month = int(match.group("m"))
        if not 1 <= month <= 12:
            return "月は 1〜12 で入力してください（例: 2026年10月）。"
        lead = self._forms_lead_months()
        forms = None
        if lead is not None:
            index = year * 12 + (month - 1) - lead
            forms = f"{index // 12}年{index % 12 + 1}月"
        state["schedule"] = {"start": f"{year}年{month}月", "forms": forms, "lead": lead}
        self._record(turn, step, answer, STATUS_DONE)
        return f"連携開始の希望時期を{year}年{month}月として記録しました。"

    # -- views ----------------------------------------------------------------------------------------
    def _question(self, state: dict[str, Any], step: Step) -> str:
        if step.kind == "case":
            return self._case_question(self._ensure_case(state))
        if step.kind == "notification" and state["notification"]["question"]:
            return state["notification"]["question"]
        return step.question

    def _citation(self, step: Step) -> dict[str, Any] | None:
        chunk = self.assistant.index.by_id.get(step.cite_id)
        return cite(chunk, list(step.needles)).to_dict() if chunk is not None else None

    def _status(self, state: dict[str, Any], step_id: str) -> str:
        return state["answers"].get(step_id, {}).get("status", UNANSWERED)

    def items(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for step in self.steps:
            entry = state["answers"].get(step.id, {})
            rows.append(
                {
                    "step": step.id,
                    "label": step.label,
                    "phase": step.phase,
                    "phase_name": PHASE_NAMES[step.phase],
                    "status": entry.get("status", UNANSWERED),
                    "answer": entry.get("answer", ""),
                }
            )
        return rows

    def _view(self, turn: _Turn, message: str) -> dict[str, Any]:
        """The contract keys, plus why the question matters, its citation and every item's status."""
        state, session_id = turn.state, turn.session_id
        step = self._current(state)
        if step is not None and step.kind == "case":
            self._ensure_case(state)  # the offered candidates are stored with the turn, so they stay stable
        citation = self._citation(step) if step is not None else None
        return {
            "session": session_id,
            "step": step.id if step else DONE,
            "question": self._question(state, step) if step else FINISHED_QUESTION,
            "progress": {"done": sum(1 for s in self.steps if s.id in state["answers"]), "total": len(self.steps)},
            "finished": step is None,
            "why": (step.why or (citation or {}).get("quote", "")) if step else "",
            "citation": citation,
            "items": self.items(state),
            "message": message,
            "phase": step.phase if step else DONE,
            "phase_name": PHASE_NAMES[step.phase] if step else "完了",
            "label": step.label if step else "",
            "current_answer": state["answers"].get(step.id, {}).get("answer") if step else None,
            "accepted": True,
        }

    # -- the sheet ------------------------------------------------------------------------------------
    def sheet(self, session_id: str) -> Sheet:
        session_id = validate_session_id(session_id)
        state = self._load(session_id)
        citations: list[dict[str, Any]] = []

        def number(citation: dict[str, Any] | None) -> int | None:
            if citation is None:
                return None
            for index, existing in enumerate(citations, start=1):
                if existing["source_id"] == citation["source_id"] and existing["quote"] == citation["quote"]:
                    return index
            citations.append(citation)
            return len(citations)

        answers = state["answers"]
        affair = [(s[1], answers.get(s[0], {}).get("answer") or "（未回答）") for s in AFFAIR_STEPS]
        case_title, case_reasoning = self._sheet_case(state, number)
        notice_title, notice_reasoning = self._sheet_notification(state, number)
        items, open_questions = self._sheet_items(state, number)
        schedule = self._sheet_schedule(state, number, open_questions)
        return Sheet(
            session_id=session_id,
            date=dt.date.today().isoformat(),
            affair=affair,
            case_title=case_title,
            case_reasoning=case_reasoning,
            notification_title=notice_title,
            notification_reasoning=notice_reasoning,
            items=items,
            schedule=schedule,
            open_questions=open_questions,
            citations=citations,
        )

    def _sheet_case(self, state: dict[str, Any], number: Any) -> tuple[str, list[str]]:
        case = state.get("case")
        if not case or case.get("confirmed") is None:
            reasons = []
            if case and case.get("statutory"):
                reasons.append(f"法定事務（{'、'.join(case['statutory_affairs'])}）に当たる可能性があります。")
            return f"【{STATUS_CHECK}】当てはまる事例は確定していません。", reasons
        chosen = case["confirmed"]
        known = self.knowledge.cases[chosen]
        reasons: list[str] = [f"確認の方法: {case['confirmed_by']}"]
        candidate = next((c for c in case["candidates"] if c["case"] == chosen), None)
        if candidate is not None:
            refs = "".join(f"[{number(c)}]" for c in candidate["citations"])
            reasons += [f"{reason} {refs}".strip() for reason in candidate["reasons"]]
        else:
            chunk = self.assistant.index.by_id.get(f"case-{chosen:02d}")
            if chunk is not None:
                reasons.append(f"事例の概要: {known.description} [{number(cite(chunk, ['概要']).to_dict())}]")
        mark = f"【{STATUS_CHECK}】" if known.confidence == "要確認" else ""
        return f"{mark}事例({chosen})「{known.name}」", reasons

    def _sheet_notification(self, state: dict[str, Any], number: Any) -> tuple[str, list[str]]:
        notice = state["notification"]
        code = notice.get("type")
        if not code:
            return f"【{STATUS_CHECK}】届出の種類は決まっていません。", list(notice.get("reasons") or [])
        chunk = self.assistant.index.by_id.get(f"notice-{code}")
        ref = f" [{number(cite(chunk, ['定義']).to_dict())}]" if chunk is not None else ""
        model = self.knowledge.notifications[code]
        reasons = [f"{reason}{ref}" for reason in notice.get("reasons") or []]
        if chunk is not None:
            reasons.append(f"受付: {model.window} [{number(cite(chunk, ['受付']).to_dict())}]")
        return f"{model.name}（{NOTIFICATION_NAMES[code]}）{ref}", reasons

    def _sheet_items(self, state: dict[str, Any], number: Any) -> tuple[list[SheetItem], list[str]]:
        items: list[SheetItem] = []
        open_questions: list[str] = []
        derived = {
            "prep-case-number": (STATUS_DONE, f"事例({state['case']['confirmed']})") if (state.get("case") or {}).get("confirmed") else (STATUS_CHECK, ""),
            "filing-type": (STATUS_DONE, NOTIFICATION_NAMES[state["notification"]["type"]]) if state["notification"].get("type") else (STATUS_CHECK, ""),
        }
        for phase in ITEM_PHASES:
            for item in self.knowledge.procedure.checklist:
                if item.phase != phase:
                    continue
                chunk = self.assistant.index.by_id.get(f"check-{item.id}")
                ref = number(cite(chunk, ["理由"]).to_dict()) if chunk is not None else None
                if item.id in derived:
                    status, answer = derived[item.id]
                else:
                    status = self._status(state, item.id)
                    answer = state["answers"].get(item.id, {}).get("answer", "")
                if status == UNANSWERED:
                    status, answer = STATUS_CHECK, "（未回答）"
                if item.confidence == "要確認" and status == STATUS_DONE:
                    answer = f"{answer}（出典の記載に【要確認】を含む）"
                items.append(SheetItem(PHASE_NAMES[phase], item.label, status, answer, item.question, ref))
                if status in (STATUS_CHECK, STATUS_TODO):
                    prefix = "未了" if status == STATUS_TODO else "要確認"
                    open_questions.append(f"（{prefix}）{item.label}: {item.question}{f' [{ref}]' if ref else ''}")
        case = state.get("case") or {}
        if case.get("confirmed") is None:
            open_questions.insert(0, "当てはまる事例（事例番号）と準ずる法定事務はどれか。")
        if not state["notification"].get("type"):
            open_questions.insert(0, "今回の手続は新規・変更・中止・差替えのどれに当たるか。")
        return items, open_questions

    def _sheet_schedule(self, state: dict[str, Any], number: Any, open_questions: list[str]) -> list[str]:
        by_id = self.assistant.index.by_id
        facts = {f.id: f for f in self.knowledge.procedure.schedule}
        schedule = state.get("schedule") or {}
        lines: list[str] = []

        def fact_ref(fact_id: str) -> str:
            chunk = by_id.get(f"schedule-{fact_id}")
            return f" [{number(cite(chunk, [facts[fact_id].fact[:20]]).to_dict())}]" if chunk is not None and fact_id in facts else ""

        start = schedule.get("start")
        lines.append(f"連携開始の希望時期: {start or f'【{STATUS_CHECK}】未定'}")
        if start and schedule.get("forms"):
            lines.append(f"届出書の様式・作成マニュアルの配布の目安: {schedule['forms']}ごろ（連携開始のおよそ{schedule['lead']}か月前）{fact_ref('forms-10-months')}")
        if state["notification"].get("type") == "replace" and "replace-any-time" in facts:
            lines.append(f"差替えの受付: {facts['replace-any-time'].fact}{fact_ref('replace-any-time')}")
        elif "windows-3-per-year" in facts:
            lines.append(f"受付期間: {facts['windows-3-per-year'].fact}{fact_ref('windows-3-per-year')}")
        if "exact-months-unknown" in facts:
            unknown = facts["exact-months-unknown"].fact.removeprefix(f"【{STATUS_CHECK}】")
            lines.append(f"次の受付期間: 【{STATUS_CHECK}】{unknown}{fact_ref('exact-months-unknown')}")
            open_questions.append("次の受付期間はいつか、その受付期間に届け出ると何月に連携を始められるか。")
        return lines
