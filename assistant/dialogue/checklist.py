"""The pre-filing checklist conversation and its result, the 事前相談シート.

One question at a time: who writes the sheet (municipality, department) → the affair (name, basis norms,
executing body, target persons, purpose, benefit) → the fitting case type (Assistant.classify, confirmed
by the user; or a statutory affair, which needs no notification) → the notification type → the checklist
items of corpus/procedure.yaml by phase → the schedule → the questions for the commission.

Items that earlier answers already decide are not asked (their `derive` rule), nor items the notification
type makes moot (`applies_to`); see `assistant.dialogue.checklist_rules`. The progress counts the
questions that are asked.

Who writes the sheet is asked first: the municipality, the department, the person in charge and a contact.
Personal data in them is masked before they are stored (`assistant.privacy`; the person's answer is read as
the value of a person label, so a bare name is masked too). A sheet that should carry the name and contact
in full gets them when it is written (`export(..., person=, contact=)`); they go into that file only.

Every input is committed with the new state in one transaction before the next question is returned
(nothing when a step fails), so a session resumes by id; concurrent inputs to one session never overwrite
each other (see `ChecklistService.step`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.advise.matching import fold
from assistant.advise.notify import AffairFacts, NotificationAdvisor
from assistant.citations import cite
from assistant.dialogue.checklist_rules import SKIPPED, STATUTORY, UNANSWERED, Facts, Outcome, Rules, applies
from assistant.dialogue.export import (
    STATUS_CHECK,
    STATUS_DONE,
    STATUS_NOT_APPLICABLE,
    STATUS_TODO,
    Sheet,
    SheetItem,
    check_format,
    clean_contact_field,
    render_sheet_markdown,
    write_sheet_docx,
    write_sheet_pdf,
    write_text,
)
from assistant.dialogue.store import AnswerRow, DialogueStore, SessionConflict, StoreError, state_revision
from assistant.knowledge.chunks import NOTIFICATION_NAMES
from assistant.knowledge.models import ChecklistItem, ScheduleFact
from assistant.privacy import mask_personal_data
from assistant.validation import clean_text, validate_session_id

KIND = "checklist"
DONE = "done"
EXPORT_FORMATS = ("md", "docx", "pdf")
FINISHED_QUESTION = (
    "チェックリストはすべて終わりました。事前相談シートを Markdown・Word（DOCX）・PDF で書き出せます。"
    "回答を直す場合は「○○の回答を変更」と入力してください。"
)
START_MESSAGE = (
    "事前相談シートの作成を始めます。質問に一つずつお答えください（「スキップ」「戻る」「○○の回答を変更」も使えます）。"
    "これまでの回答で決まる項目は質問を省きます。回答に含まれる氏名・電話番号・メールアドレスはマスクしてから保存します。"
)
MAX_ANSWER_CHARS = 2000
MAX_NOTIFICATION_ATTEMPTS = 3
MAX_CONFLICT_RETRIES = 5
PHASE_NAMES = {
    "profile": "作成者",
    "affair": "事務の概要",
    "case": "当てはまる事例",
    "notification": "届出の種類",
    "preparation": "事前準備",
    "filing": "届出時",
    "review": "審査時",
    "requirement": "要件の確認",
    "schedule": "スケジュール",
    "questions": "委員会への確認事項",
}
ITEM_PHASES = ("preparation", "filing", "review", "requirement")

PROFILE_WHY = (
    "事前相談シートの記載事項です。回答に含まれる氏名・電話番号・メールアドレスは、マスクしてから保存します"
    "（シートに実際の氏名や連絡先を載せるときは、書き出すときに入力してください。その値は保存しません）。"
)
PERSON_STEP = "profile-person"
CONTACT_STEP = "profile-contact"
PERSON_LABEL = "担当者"  # a person label of corpus/privacy.yaml: what follows it is masked as a name
PROFILE_STEPS: list[tuple[str, str, str]] = [
    ("profile-municipality", "団体名", "はじめに、事前相談シートに記載する団体名を教えてください（例: 〇〇市）。"),
    ("profile-department", "担当部署", "担当部署の名称を教えてください（例: 〇〇市 こども家庭課）。"),
    (PERSON_STEP, "担当者", "担当者のお名前を教えてください（氏名はマスクして保存します）。"),
    (CONTACT_STEP, "連絡先", "連絡先を教えてください（例: 電話番号、メールアドレス。電話番号とメールアドレスはマスクして保存します）。"),
]
NAME_STEP = "affair-name"
# The affair questions are the conversation's own; why each matters is quoted from the corpus.
AFFAIR_STEPS: list[tuple[str, str, str, str, list[str]]] = [
    (NAME_STEP, "事務の名称", "届出を予定している事務の名称を教えてください（例: 子ども医療費助成事務）。", "flow-preparation", ["番号利用条例"]),
    ("affair-basis", "根拠規範", "その事務の根拠規範（条例・規則・要綱の名称）を教えてください。", "check-filing-norms-promulgated", ["理由"]),
    ("affair-body", "実施機関", "その事務を処理する執行機関（市長・教育委員会など）はどこですか？", "check-req-querier", ["理由"]),
    ("affair-targets", "対象者", "根拠規範に書かれている事務の対象者はどなたですか（例: 中学生までの子どもとその保護者）？", "check-req-target-persons", ["理由"]),
    ("affair-purpose", "目的", "根拠規範に書かれている事務の目的を教えてください（例: 子どもの保健の向上と福祉の増進）。", "check-req-purpose-terms", ["理由"]),
    ("affair-benefit", "給付の内容", "給付の内容を教えてください（例: 医療費の自己負担分の助成）。", "check-req-content-similarity", ["理由"]),
]
QUESTIONS_STEP = "commission-questions"
QUESTIONS_QUESTION = (
    "最後に、個人情報保護委員会（事務局）に確認したいことがあれば入力してください。"
    "複数あるときは「？」や改行で区切ってください。特になければ「なし」と入力してください。"
)
QUESTIONS_WHY = (
    "事前相談シートの「委員会への確認事項」に載せます。チェックリストで「要確認」となった点も、あわせて確認事項に加えます。"
)

StepKind = Literal["profile", "affair", "case", "notification", "item", "schedule", "questions"]
Mode = Literal["ask", "derived", "moot"]

_SKIP = re.compile(r"^(スキップ|skip|とばす|飛ばす|パス|pass|後で|あとで|次へ)$")
_BACK = re.compile(r"^(戻る|もどる|back|前へ|前に戻る|ひとつ前|一つ前|前の質問)$")
_CHANGE_ANSWER = re.compile(r"^(?P<target>.+?)の(回答|答え)を?(変更|修正|訂正|やり直)")
_CHANGE_EXACT = re.compile(r"^(?P<target>.+?)を(変更|修正|訂正|やり直)(する|します|したい|して)?$")
_CASE_NUMBER = re.compile(r"(?:事例|^)\(?(\d{1,2})\)?(?:番|です|。|$)")
_NO_FIT = re.compile(r"該当なし|当てはまらない|わから|分から|不明|ない")
_NOTHING = re.compile(r"^(特に)?(なし|無し|ない|ありません|ございません)(です)?。?$")
_QUESTION_BREAK = re.compile(r"(?<=[？?])|\n|；|;")
_NUMBERING = re.compile(r"^\s*(?:[0-9０-９]+[.．、)）]|[（(][0-9０-９]+[)）]|[①-⑳]|[・\-])\s*")
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
    item: ChecklistItem | None = None


@dataclass
class _Turn:
    """One input being handled: the session's state (changed in place) and the inputs to record with it."""

    session_id: str
    state: dict[str, Any]
    inputs: list[AnswerRow] = field(default_factory=list)


def _normalize_answer(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:MAX_ANSWER_CHARS]


def mask_person(text: str) -> str:
    """A person's name as it is stored: masked as the value of a person label (a bare name has no other cue)."""
    masked, _ = mask_personal_data(f"{PERSON_LABEL}：{text}")
    label, _, value = masked.partition(":")  # the masker folds the full-width colon (NFKC)
    return value.strip() if label == PERSON_LABEL else masked


def split_questions(text: str) -> list[str]:
    """The separate questions in one answer (split at ？, line breaks and ；, numbering removed)."""
    parts = (_NUMBERING.sub("", part).strip() for part in _QUESTION_BREAK.split(text))
    return [part for part in parts if part and part != SKIPPED]


class ChecklistService:
    def __init__(
        self, assistant: Any, *, store: DialogueStore | None = None, today: Callable[[], dt.date] | None = None
    ) -> None:
        self.assistant = assistant
        self.knowledge = assistant.knowledge
        self.store = store or DialogueStore.for_settings(assistant.settings)
        self.today = today or dt.date.today
        self.advisor = NotificationAdvisor(self.knowledge.notification_rules)
        self.lead_fact: ScheduleFact | None = next((f for f in self.knowledge.procedure.schedule if f.lead_months), None)
        self.items_by_id = {item.id: item for item in self.knowledge.procedure.checklist}
        self.steps = self._build_steps()
        self.by_step = {step.id: index for index, step in enumerate(self.steps)}

    # -- the steps, from the corpus --------------------------------------------------------------
    def _item_why(self, item_id: str) -> str:
        for item in self.knowledge.procedure.checklist:
            if item.id == item_id:
                return item.why
        return ""

    def _build_steps(self) -> list[Step]:
        steps = [Step(step_id, "profile", "profile", label, question, PROFILE_WHY, "") for step_id, label, question in PROFILE_STEPS]
        for step_id, label, question, cite_id, needles in AFFAIR_STEPS:
            item_id = cite_id.removeprefix("check-")
            why = self._item_why(item_id) if cite_id.startswith("check-") else ""
            steps.append(Step(step_id, "affair", "affair", label, question, why, cite_id, tuple(needles)))
        case_item, type_item = "prep-case-number", "filing-type"
        steps.append(Step("case", "case", "case", "当てはまる事例", "", self._item_why(case_item), f"check-{case_item}"))
        default_question = self.knowledge.notification_rules.questions["existing"]
        steps.append(
            Step("notification", "notification", "notification", "届出の種類", default_question, self._item_why(type_item), f"check-{type_item}")
        )
        for phase in ITEM_PHASES:
            for item in self.knowledge.procedure.checklist:
                if item.phase == phase:
                    steps.append(Step(item.id, "item", phase, item.label, item.question, item.why, f"check-{item.id}", item=item))
        lead = self.lead_fact
        facts = " ".join(
            f.fact for f in self.knowledge.procedure.schedule
            if f is lead or (f.sheet_label and f.confidence == "確認済み" and applies(f.applies_to, "new"))
        )
        steps.append(
            Step(
                "schedule",
                "schedule",
                "schedule",
                "連携開始の希望時期",
                f"スケジュールを確認します。{facts} 情報連携を始めたい時期（例: {{example}}）を教えてください。"
                "未定の場合は「未定」と入力してください。",
                lead.fact if lead else "",
                f"schedule-{lead.id}" if lead else "",
                (f"{lead.lead_months}か月",) if lead else ("",),
            )
        )
        steps.append(Step(QUESTIONS_STEP, "questions", "questions", "委員会への確認事項", QUESTIONS_QUESTION, QUESTIONS_WHY, ""))
        return steps

    def _example_month(self) -> str:
        """A start month far enough ahead for the filing windows (as of today), as an example in a question."""
        lead = self.lead_fact.lead_months if self.lead_fact and self.lead_fact.lead_months else 0
        today = self.today()
        index = today.year * 12 + today.month - 1 + lead + 6
        return f"{index // 12}年{index % 12 + 1}月"

    # -- which steps are asked -------------------------------------------------------------------
    def _rules(self, state: dict[str, Any]) -> Rules:
        labels = {step.id: step.label for step in self.steps}
        return Rules(self.items_by_id, self.knowledge.cases, labels, lambda text: self._top_case(state, text))

    def _top_case(self, state: dict[str, Any], text: str) -> int | None:
        """The best case type for `text` alone; remembered in the state so a view never classifies twice."""
        memo = state.setdefault("classified", {})
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        if key not in memo:
            result = self.assistant.classify(text[: self.assistant.settings.max_question_chars])
            memo[key] = result["candidates"][0]["case"] if result["candidates"] else None
        return memo[key]

    def _mode(self, state: dict[str, Any], step: Step, rules: Rules | None = None) -> tuple[Mode, Outcome | None]:
        """Whether a step is asked, decided by other answers (with its outcome) or moot."""
        facts = Facts.of(state)
        kind = facts.kind
        if step.kind == "notification":
            return ("moot", None) if kind == STATUTORY else ("ask", None)
        if step.kind == "schedule":
            if kind == STATUTORY or (self.lead_fact is not None and not applies(self.lead_fact.applies_to, kind)):
                return "moot", None
            return "ask", None
        if step.kind != "item" or step.item is None:
            return "ask", None
        if not applies(step.item.applies_to, kind):
            return "moot", None
        outcome = (rules or self._rules(state)).outcome(step.item, facts)
        return ("ask", None) if outcome is None else ("derived", outcome)

    def _asked_indexes(self, state: dict[str, Any]) -> list[int]:
        rules = self._rules(state)
        return [i for i, step in enumerate(self.steps) if self._mode(state, step, rules)[0] == "ask"]

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
            return (step.id, case.get("affair_key"), case.get("stage"), case.get("offer"))
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

    def sheet_markdown(self, session_id: str, *, person: str = "", contact: str = "") -> str:
        return render_sheet_markdown(self.sheet(session_id, person=person, contact=contact))

    def export(self, session_id: str, fmt: str, output: Path, *, person: str = "", contact: str = "") -> Path:
        """Write the 事前相談シート; the person and contact go into this file only."""
        fmt = check_format(fmt, EXPORT_FORMATS)
        sheet = self.sheet(session_id, person=person, contact=contact)
        if fmt == "md":
            return write_text(render_sheet_markdown(sheet), Path(output))
        if fmt == "pdf":
            return write_sheet_pdf(sheet, Path(output))
        return write_sheet_docx(sheet, Path(output))

    # -- state --------------------------------------------------------------------------------------
    def _new_state(self) -> dict[str, Any]:
        return {"cursor": self.steps[0].id, "answers": {}, "case": None, "schedule": {}, "classified": {},
                "notification": {"text": "", "question": None, "attempts": 0, "type": None, "reasons": []}}

    def _load(self, session_id: str) -> dict[str, Any]:
        record = self.store.load_session(KIND, validate_session_id(session_id))
        if record is None:
            raise StoreError(f"セッション {session_id} のチェックリストは見つかりません。先に `assistant checklist --session {session_id}` で開始してください")
        return record.state

    def _position(self, state: dict[str, Any], asked: list[int] | None = None) -> int:
        """The current step's index; the cursor is kept as a step id so corpus edits cannot shift it.

        When the cursor's step is no longer asked (a later answer decided it), the next unanswered question is current.
        """
        cursor = state["cursor"]
        if cursor == DONE:
            return len(self.steps)
        asked = self._asked_indexes(state) if asked is None else asked
        index = self.by_step.get(cursor)
        if index is not None and index in asked:
            return index
        unanswered = [i for i in asked if self.steps[i].id not in state["answers"]]
        later = [i for i in unanswered if index is not None and i > index]
        return (later or unanswered or [len(self.steps)])[0]

    def _move(self, state: dict[str, Any], index: int) -> None:
        state["cursor"] = self.steps[index].id if index < len(self.steps) else DONE

    def _current(self, state: dict[str, Any]) -> Step | None:
        index = self._position(state)
        return self.steps[index] if index < len(self.steps) else None

    def _advance(self, state: dict[str, Any], cursor: int) -> None:
        """To the next unanswered question after `cursor` (the questions asked depend on the answers so far)."""
        asked = self._asked_indexes(state)
        unanswered = [i for i in asked if self.steps[i].id not in state["answers"]]
        later = [i for i in unanswered if i > cursor]
        self._move(state, (later or unanswered or [len(self.steps)])[0])

    def _record(self, turn: _Turn, step: Step, answer: str, status: str) -> None:
        """The step's answer, then the next unanswered step (stored with the new state when the turn ends)."""
        turn.state["answers"][step.id] = {"answer": answer, "status": status}
        self._advance(turn.state, self.by_step[step.id])
        turn.inputs.append(AnswerRow(step.id, answer, status))

    def _log(self, turn: _Turn, step: Step, answer: str) -> None:
        """An input that does not finish the step (a rejected candidate, a partial answer)."""
        turn.inputs.append(AnswerRow(step.id, answer, UNANSWERED))

    # -- one input ----------------------------------------------------------------------------------
    def _handle(self, turn: _Turn, answer: str) -> str:
        state = turn.state
        folded = fold(answer)
        if _BACK.match(folded):
            return self._back(state)
        target = self._change_target(answer)
        if target is not None:
            return self._change(state, target)
        step = self._current(state)
        if step is None:
            return "チェックリストはすべて終わっています。回答を直す場合は「○○の回答を変更」と入力してください。"
        if _SKIP.match(folded):
            self._record(turn, step, SKIPPED, STATUS_CHECK)
            return f"「{step.label}」をスキップしました（要確認として残します）。"
        handler = {
            "profile": self._answer_open,
            "affair": self._answer_open,
            "case": self._answer_case,
            "notification": self._answer_notification,
            "item": self._answer_item,
            "schedule": self._answer_schedule,
            "questions": self._answer_questions,
        }[step.kind]
        return handler(turn, step, answer)

    def _back(self, state: dict[str, Any]) -> str:
        asked = self._asked_indexes(state)
        position = self._position(state, asked)
        earlier = [i for i in asked if i < position]
        if not earlier:
            return "最初の質問です。"
        self._move(state, earlier[-1])
        return "一つ前の質問に戻りました。"

    def _change(self, state: dict[str, Any], target: int) -> str:
        step = self.steps[target]
        mode, _ = self._mode(state, step)
        if mode == "derived" and step.item is not None and step.item.derive is not None:
            sources = [self.steps[self.by_step[s]].label for s in step.item.derive.steps if s in self.by_step]
            basis = "「" + "」「".join(sources) + "」" if sources else "これまで"
            return f"「{step.label}」は{basis}の回答から決まるため、直接は変更できません。{basis}の回答を変更してください。"
        if mode == "moot":
            return f"「{step.label}」は、これまでの回答（{self._moot_reason(state)}）では対象外です。"
        self._move(state, target)
        current = state["answers"].get(step.id, {}).get("answer")
        return f"「{step.label}」の回答を変更します。" + (f"（現在の回答: {current}）" if current else "")

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

    def _answer_open(self, turn: _Turn, step: Step, answer: str) -> str:
        """A free-text answer (who writes the sheet, the affair): a bare はい／いいえ is not one."""
        reading = self.assistant.read(answer)
        bare = reading.polarity is not None and not reading.affairs
        if bare and (step.id in (NAME_STEP, PERSON_STEP) or reading.polarity == "yes"):
            return (
                f"「{answer[:20]}」は「{step.label}」として記録できません。{step.question}"
                "まだ決まっていない場合は「スキップ」と入力してください。"
            )
        if step.id == PERSON_STEP:
            answer = mask_person(answer)
        self._record(turn, step, answer, STATUS_CHECK if bare else STATUS_DONE)
        return f"「{step.label}」を記録しました。" + ("「要確認」として残します。" if bare else "")

    def _answer_item(self, turn: _Turn, step: Step, answer: str) -> str:
        polarity = self._polarity(answer)
        status = {"yes": STATUS_DONE, "no": STATUS_TODO, "unsure": STATUS_CHECK}.get(polarity or "", STATUS_CHECK)
        self._record(turn, step, answer, status)
        return f"「{step.label}」を「{status}」として記録しました。"

    def _answer_questions(self, turn: _Turn, step: Step, answer: str) -> str:
        reading = self.assistant.read(answer)
        if reading.polarity == "no" or _NOTHING.match(fold(answer)):
            self._record(turn, step, "（なし）", STATUS_DONE)
            return "委員会への確認事項は、チェックリストで要確認となった点だけを載せます。"
        questions = split_questions(answer)
        if not questions or (reading.polarity == "yes" and len(answer) <= 10):
            return "確認したいことを文章で入力してください。特になければ「なし」と入力してください。"
        self._record(turn, step, answer, STATUS_DONE)
        return f"委員会への確認事項を{len(questions)}件記録しました。"

    # -- the case step ------------------------------------------------------------------------------
    def _affair_text(self, state: dict[str, Any]) -> str:
        parts = [state["answers"].get(s[0], {}).get("answer", "") for s in AFFAIR_STEPS]
        return "。".join(p for p in parts if p and p != SKIPPED)

    def _ensure_case(self, state: dict[str, Any]) -> dict[str, Any]:
        text = self._affair_text(state)
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        case = state.get("case")
        if case is not None and case.get("affair_key") == key:
            case.setdefault("stage", "candidates")
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
            "statutory_answer": None,
            "stage": "statutory" if result["statutory"] else "candidates",
            "no_fit": result["no_fit"],
            "offer": 0,
            "confirmed": None,
            "confirmed_by": None,
            "note": result.get("clarifying_question"),
        }
        return state["case"]

    def _case_question(self, case: dict[str, Any]) -> str:
        names = "、".join(case["statutory_affairs"]) or "法定事務"
        if case.get("stage") == "statutory":
            return (
                f"入力された内容は法定事務（{names}）に当たる可能性があります。法定事務であれば、独自利用事務の届出は要りません。"
                "法定事務として扱いますか？（はい＝法定事務として記録し、届出に関する質問を省きます／"
                "いいえ＝独自利用事務として当てはまる事例を選びます／事例番号を入力しても構いません）"
            )
        notes = []
        if case["statutory"] and case.get("statutory_answer") != "no":
            notes.append(f"法定事務（{names}）に当たるかは「要確認」として残します。")
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
        polarity = self._polarity(answer)
        number = _CASE_NUMBER.search(fold(answer))
        if number and int(number.group(1)) in self.knowledge.cases:
            chosen = int(number.group(1))
            if case.get("stage") == "statutory":
                case["statutory_answer"] = "no"
            case["confirmed"], case["confirmed_by"], case["stage"] = chosen, "利用者が事例番号を指定", "candidates"
            self._record(turn, step, answer, STATUS_DONE)
            return f"事例({chosen})として記録しました。"
        if number:
            return f"事例({number.group(1)})はありません。1〜35 の番号を入力してください。"
        if case.get("stage") == "statutory":
            return self._answer_statutory(turn, step, case, answer, polarity)
        offering = case["offer"] < len(case["candidates"]) and not case["no_fit"]
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

    def _answer_statutory(self, turn: _Turn, step: Step, case: dict[str, Any], answer: str, polarity: str | None) -> str:
        if polarity == "yes":
            case.update(statutory_answer="yes", confirmed=None, confirmed_by=None)
            self._record(turn, step, answer, STATUS_DONE)
            return "法定事務として記録しました。独自利用事務の届出に関する質問は省きます。"
        if polarity in ("no", "unsure"):
            case.update(statutory_answer=polarity, stage="candidates")
            self._log(turn, step, answer)
            if polarity == "no":
                return "独自利用事務として、当てはまる事例を確認します。"
            return "法定事務に当たるかは「要確認」とし、当てはまる事例を確認します。"
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
        reading = self.assistant.read(answer)
        facts = AffairFacts.from_dict(notice.get("facts") or {}).with_reading(reading.facts)
        slot = notice.get("slot") or "existing"
        if slot == "existing" and reading.polarity in ("yes", "no") and facts.existing is None:
            facts = AffairFacts.from_dict(facts.to_dict() | {"existing": reading.polarity})
        elif slot == "content_change" and reading.polarity in ("yes", "no"):
            facts = AffairFacts.from_dict(facts.to_dict() | {"content_change": reading.polarity})
        elif slot == "transfer":
            facts = AffairFacts.from_dict(facts.to_dict() | {"transfer_details": True})
        notice["facts"] = facts.to_dict()
        notice["attempts"] += 1
        decision = self.advisor.decide(facts)
        if decision.notification_type:
            notice.update(type=decision.notification_type, question=None, slot=None, reasons=[decision.rule.reason])
            self._record(turn, step, answer, STATUS_DONE)
            return f"届出の種類は「{NOTIFICATION_NAMES[decision.notification_type]}」と考えられます。"
        if decision.question and notice["attempts"] < MAX_NOTIFICATION_ATTEMPTS and reading.polarity != "unsure":
            notice.update(question=decision.question, slot=decision.question_slot, reasons=[decision.rule.reason])
            self._log(turn, step, answer)
            return "もう少し教えてください。"
        notice.update(type=None, question=None, slot=None, reasons=[decision.rule.reason])
        self._record(turn, step, answer, STATUS_CHECK)
        return "届出の種類は決められませんでした。「要確認」として委員会事務局への確認事項に加えます。"

    def _polarity(self, answer: str) -> str | None:
        return self.assistant.read(answer).polarity

    # -- the schedule step --------------------------------------------------------------------------
    def _answer_schedule(self, turn: _Turn, step: Step, answer: str) -> str:
        state = turn.state
        match = _MONTH.search(fold(answer))
        if not match or self._polarity(answer) == "unsure":
            state["schedule"] = {"start": None}
            self._record(turn, step, answer, STATUS_CHECK)
            return "連携開始の時期は「要確認」として記録しました。"
        era = match.group("ey")
        year = int(match.group("y")) if match.group("y") else 2018 + (1 if era == "元" else int(era))
        month = int(match.group("m"))
        if not 1 <= month <= 12:
            return f"月は 1〜12 で入力してください（例: {self._example_month()}）。"
        today = self.today()
        start_index, this_month = year * 12 + month - 1, today.year * 12 + today.month - 1
        if start_index < this_month:
            return (
                f"{year}年{month}月は既に過ぎています。これから情報連携を始めたい時期を入力してください"
                f"（例: {self._example_month()}）。未定の場合は「未定」と入力してください。"
            )
        lead = self.lead_fact.lead_months if self.lead_fact else None
        forms = None
        early = False
        if lead is not None:
            index = start_index - lead
            forms = f"{index // 12}年{index % 12 + 1}月"
            early = index <= this_month
        state["schedule"] = {"start": f"{year}年{month}月", "forms": forms, "lead": lead, "early": early}
        self._record(turn, step, answer, STATUS_CHECK if early else STATUS_DONE)
        if early:
            return (
                f"連携開始の希望時期を{year}年{month}月として記録しました。ただし、届出書の様式は連携開始のおよそ{lead}か月前に"
                f"配布されるため（目安は{forms}）、この時期には間に合わないおそれがあります。委員会事務局に早めにご相談ください"
                "（「要確認」として確認事項に加えます）。"
            )
        return f"連携開始の希望時期を{year}年{month}月として記録しました。"

    # -- views ----------------------------------------------------------------------------------------
    def _question(self, state: dict[str, Any], step: Step) -> str:
        if step.kind == "case":
            return self._case_question(self._ensure_case(state))
        if step.kind == "notification" and state["notification"]["question"]:
            return state["notification"]["question"]
        if step.kind == "schedule":
            return step.question.replace("{example}", self._example_month())
        return step.question

    def _citation(self, step: Step) -> dict[str, Any] | None:
        chunk = self.assistant.index.by_id.get(step.cite_id) if step.cite_id else None
        return cite(chunk, list(step.needles)).to_dict() if chunk is not None else None

    def _moot_reason(self, state: dict[str, Any]) -> str:
        kind = Facts.of(state).kind
        if kind == STATUTORY:
            return "法定事務のため"
        return f"届出の種類が{NOTIFICATION_NAMES[kind]}のため" if kind else ""

    def items(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """Every step with its status: asked (the answer), decided by other answers, or moot (対象外)."""
        rules = self._rules(state)
        rows = []
        for step in self.steps:
            entry = state["answers"].get(step.id, {})
            mode, outcome = self._mode(state, step, rules)
            status, answer = entry.get("status", UNANSWERED), entry.get("answer", "")
            if mode == "derived" and outcome is not None:
                status, answer = outcome.status, outcome.answer
            elif mode == "moot":
                status, answer = STATUS_NOT_APPLICABLE, self._moot_reason(state)
            rows.append(
                {
                    "step": step.id,
                    "label": step.label,
                    "phase": step.phase,
                    "phase_name": PHASE_NAMES[step.phase],
                    "status": status,
                    "answer": answer,
                    "asked": mode == "ask",
                }
            )
        return rows

    def _view(self, turn: _Turn, message: str) -> dict[str, Any]:
        """The contract keys, plus why the question matters, its citation, the question's number and every item's status."""
        state, session_id = turn.state, turn.session_id
        step = self._current(state)
        if step is not None and step.kind == "case":
            self._ensure_case(state)  # the offered candidates are stored with the turn, so they stay stable
        asked = self._asked_indexes(state)
        position = self._position(state, asked)
        done = sum(1 for i in asked if self.steps[i].id in state["answers"])
        citation = self._citation(step) if step is not None else None
        return {
            "session": session_id,
            "step": step.id if step else DONE,
            "question": self._question(state, step) if step else FINISHED_QUESTION,
            "progress": {"done": done, "total": len(asked), "remaining": len(asked) - done},
            "finished": step is None,
            "number": asked.index(position) + 1 if position in asked else None,
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
    def sheet(self, session_id: str, *, person: str = "", contact: str = "") -> Sheet:
        session_id = validate_session_id(session_id)
        person = clean_contact_field(person, "担当者名")
        contact = clean_contact_field(contact, "連絡先")
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

        def given(step_id: str) -> str:
            value = answers.get(step_id, {}).get("answer", "")
            return "" if value == SKIPPED else value

        affair = [(s[1], answers.get(s[0], {}).get("answer") or "（未回答）") for s in AFFAIR_STEPS]
        case_title, case_reasoning = self._sheet_case(state, number)
        notice_title, notice_reasoning = self._sheet_notification(state, number)
        items, open_questions, open_points, moot = self._sheet_items(state, number)
        schedule = self._sheet_schedule(state, number, open_questions)
        own = given(QUESTIONS_STEP)
        return Sheet(
            session_id=session_id,
            date=self.today().isoformat(),
            affair=affair,
            case_title=case_title,
            case_reasoning=case_reasoning,
            notification_title=notice_title,
            notification_reasoning=notice_reasoning,
            items=items,
            schedule=schedule,
            open_questions=open_questions,
            citations=citations,
            municipality=given("profile-municipality"),
            department=given("profile-department"),
            person=person or given(PERSON_STEP),
            contact=contact or given(CONTACT_STEP),
            own_questions=split_questions(own) if own != "（なし）" else [],
            open_points=open_points,
            not_applicable=moot,
            not_applicable_reason=self._moot_reason(state),
        )

    def _sheet_case(self, state: dict[str, Any], number: Any) -> tuple[str, list[str]]:
        case = state.get("case")
        if case and case.get("statutory_answer") == "yes":
            names = "、".join(case.get("statutory_affairs") or []) or "法定事務"
            return (
                f"法定事務（{names}）に当たると回答されました。法定事務であれば、独自利用事務の届出は要りません。",
                ["法定事務に自治体が独自に上乗せする部分があれば、その部分は独自利用事務になり得ます（【要確認】）。"],
            )
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
        if Facts.of(state).kind == STATUTORY:
            return "届出は不要と考えられます（法定事務のため）。", []
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

    def _sheet_items(self, state: dict[str, Any], number: Any) -> tuple[list[SheetItem], list[str], list[str], list[str]]:
        """The items with their status, the points for the commission, the points for the municipality, the moot items."""
        items: list[SheetItem] = []
        for_commission: list[str] = []
        for_municipality: list[str] = []
        moot: list[str] = []
        rules = self._rules(state)
        for step in self.steps:
            item = step.item
            if item is None:
                continue
            mode, outcome = self._mode(state, step, rules)
            if mode == "moot":
                moot.append(item.label)
                continue
            chunk = self.assistant.index.by_id.get(f"check-{item.id}")
            ref = number(cite(chunk, ["理由"]).to_dict()) if chunk is not None else None
            if outcome is not None:
                status, answer = outcome.status, outcome.answer
            else:
                entry = state["answers"].get(item.id, {})
                status, answer = entry.get("status", UNANSWERED), entry.get("answer", "")
            if status == UNANSWERED:
                status, answer = STATUS_CHECK, "（未回答）"
            if item.confidence == "要確認" and status == STATUS_DONE:
                answer = f"{answer}（出典の記載に【要確認】を含む）"
            items.append(SheetItem(PHASE_NAMES[step.phase], item.label, status, answer, item.question, ref))
            mark = f" [{ref}]" if ref else ""
            if status == STATUS_CHECK and item.commission_question:
                for_commission.append(f"{item.commission_question}（{item.label}: {answer}）{mark}")
            elif status in (STATUS_CHECK, STATUS_TODO):
                prefix = "未了" if status == STATUS_TODO else "要確認"
                for_municipality.append(f"（{prefix}）{item.label}: {item.question}{mark}")
        return items, for_commission, for_municipality, moot

    def _sheet_schedule(self, state: dict[str, Any], number: Any, open_questions: list[str]) -> list[str]:
        by_id = self.assistant.index.by_id
        kind = Facts.of(state).kind
        if kind == STATUTORY:
            return ["法定事務のため、独自利用事務の届出の受付期間とスケジュールは対象外です。"]
        schedule = state.get("schedule") or {}

        def fact_ref(fact: ScheduleFact) -> str:
            chunk = by_id.get(f"schedule-{fact.id}")
            return f" [{number(cite(chunk, [fact.fact[:20]]).to_dict())}]" if chunk is not None else ""

        lines: list[str] = []
        if self._mode(state, self.steps[self.by_step["schedule"]])[0] == "ask":
            start = schedule.get("start")
            lines.append(f"連携開始の希望時期: {start or f'【{STATUS_CHECK}】未定'}")
            if start and schedule.get("forms") and self.lead_fact is not None:
                lines.append(
                    f"届出書の様式・作成マニュアルの配布の目安: {schedule['forms']}ごろ"
                    f"（連携開始のおよそ{schedule['lead']}か月前）{fact_ref(self.lead_fact)}"
                )
            if start and schedule.get("early"):
                lines.append(f"【{STATUS_CHECK}】連携開始まで{schedule['lead']}か月ありません。様式の配布より前の時期のため、間に合うか確認が必要です。")
                open_questions.append(f"希望する連携開始（{start}）まで{schedule['lead']}か月ありませんが、この時期に連携を始められるか。")
        for fact in self.knowledge.procedure.schedule:
            if not applies(fact.applies_to, kind):
                continue
            if fact.sheet_label:
                lines.append(f"{fact.sheet_label}: {fact.fact}{fact_ref(fact)}")
            if fact.commission_question:
                open_questions.append(f"{fact.commission_question}{fact_ref(fact)}")
        return lines
