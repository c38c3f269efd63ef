"""The audit log: who asked what, when, which sources answered, and security events.

Rows live in the ``audit_events`` table of the project's database (``Settings.resolved_database_url``).
Every free text is masked before it is stored, so the log never holds a My Number, phone number,
e-mail address or name that a user typed. Rows older than ``audit_retention_days`` are purged when
the log is opened and once a day while the app runs. For the help desk:

    python -m assistant.audit export --out audit.csv [--since 2025-04-01]
    python -m assistant.audit purge
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from assistant.config import ConfigError
from assistant.dialogue.store import get_engine
from assistant.privacy import mask_personal_data

log = logging.getLogger(__name__)

# Actions (the "操作" column).
CHAT = "chat"
ASK = "ask"
CHECKLIST = "checklist"
REPLY = "reply"
INGEST = "ingest"
REBUILD = "rebuild"
LOGIN = "login"
LOGIN_FAILURE = "login_failure"
LOCKOUT = "lockout"
LOCKED_REFUSED = "login_refused_locked"
UNLOCK = "unlock"
ACCESS_DENIED = "access_denied"
AUDIT_EXPORT = "audit_export"
KNOWLEDGE_CHANGE = "knowledge_change"
KNOWLEDGE_EXPORT = "knowledge_export"

ACTION_LABELS: dict[str, str] = {
    CHAT: "相談チャット",
    ASK: "一問一答",
    CHECKLIST: "チェックリスト回答",
    REPLY: "回答案作成",
    INGEST: "資料登録",
    REBUILD: "索引再構築",
    LOGIN: "ログイン",
    LOGIN_FAILURE: "ログイン失敗",
    LOCKOUT: "ロック",
    LOCKED_REFUSED: "ロック中のログイン拒否",
    UNLOCK: "ロック解除",
    ACCESS_DENIED: "アクセス拒否",
    AUDIT_EXPORT: "監査ログの書き出し",
    KNOWLEDGE_CHANGE: "知識ベースの変更",
    KNOWLEDGE_EXPORT: "知識ベースの補正の書き出し",
}

NO_LOGIN = "ログインなし"
CLIENT_CLI = "コマンドライン"
CLIENT_WEB = "Web アプリ"
CLIENT_LOCAL = "このコンピューター"
CLIENT_NETWORK = "ネットワーク経由"
CLIENT_PROXY = "中継サーバー経由"

MAX_TEXT_CHARS = 4000
PURGE_INTERVAL_S = 24 * 3600
CSV_HEADERS = [
    "日時", "利用者", "役割", "利用元", "アドレス", "操作", "セッション", "ターン", "回答ID", "質問・入力（マスク済み）", "出典", "詳細",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

metadata = MetaData()

events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),  # UTC, naive
    Column("user", String(64), nullable=True),
    Column("role", String(32), nullable=True),
    Column("client", String(32), nullable=False),
    Column("address", String(64), nullable=True),
    Column("action", String(32), nullable=False),
    Column("session_id", String(128), nullable=True),
    Column("turn", Integer, nullable=True),
    Column("question", Text, nullable=False, default=""),
    Column("sources", Text, nullable=False, default="[]"),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_audit_events_at", "at"),
)


class AuditError(ValueError):
    """A request to the audit log is malformed; the message is for the user."""


@dataclass(frozen=True)
class Actor:
    """Who did something: a logged-in user with a role, or nobody logged in, and from where."""

    user: str | None = None
    role: str | None = None
    client: str = CLIENT_CLI
    address: str | None = None

    @property
    def who(self) -> str:
        return self.user or NO_LOGIN


CLI_ACTOR = Actor()


@dataclass(frozen=True)
class AuditEvent:
    at: dt.datetime
    user: str | None
    role: str | None
    client: str
    address: str | None
    action: str
    session_id: str | None
    turn: int | None
    question: str
    sources: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def answer_id(self) -> str:
        """The stored answer this row is about: ``session#turn`` (empty when there is none)."""
        if self.session_id and self.turn is not None:
            return f"{self.session_id}#{self.turn}"
        return ""

    def csv_row(self) -> list[str]:
        local = self.at.replace(tzinfo=dt.timezone.utc).astimezone()
        cells = [
            local.isoformat(timespec="seconds"),
            self.user or NO_LOGIN,
            self.role or "",
            self.client,
            self.address or "",
            ACTION_LABELS.get(self.action, self.action),
            self.session_id or "",
            "" if self.turn is None else str(self.turn),
            self.answer_id,
            self.question,
            " ".join(self.sources),
            self.detail,
        ]
        return [_csv_safe(cell) for cell in cells]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def masked(text: object) -> str:
    """The text with personal data masked and its length capped (the only form that is stored)."""
    value = "" if text is None else str(text)
    return mask_personal_data(value[: MAX_TEXT_CHARS * 2])[0][:MAX_TEXT_CHARS]


def _csv_safe(cell: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula."""
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell


def validated_retention(days: int) -> int:
    if int(days) < 0:
        raise ConfigError("audit_retention_days は 0 以上の日数で指定してください（0 は無期限）")
    return int(days)


def parse_since(text: str | None) -> dt.datetime | None:
    """A local date (YYYY-MM-DD) as the UTC moment the day starts; None for an empty value."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise AuditError(f"日付 {value!r} は YYYY-MM-DD の形式で指定してください") from exc
    start = dt.datetime.combine(day, dt.time()).astimezone()
    return start.astimezone(dt.timezone.utc).replace(tzinfo=None)


class AuditLog:
    """Append-only audit rows in one database, with retention."""

    def __init__(self, database_url: str, retention_days: int = 365, *, purge_now: bool = True) -> None:
        self.retention_days = validated_retention(retention_days)
        self.engine = get_engine(database_url)
        metadata.create_all(self.engine)
        self._purger: threading.Thread | None = None
        if purge_now:
            self.purge()

    @classmethod
    def for_settings(cls, settings: object, **kwargs: object) -> AuditLog:
        return cls(settings.resolved_database_url, settings.audit_retention_days, **kwargs)  # type: ignore[attr-defined]

    def record(
        self,
        action: str,
        actor: Actor,
        *,
        question: object = "",
        sources: Iterable[str] = (),
        session_id: str | None = None,
        turn: int | None = None,
        detail: object = "",
    ) -> bool:
        """Store one row; True when it was written. A failed write is logged, never raised, so an
        answer the user already has is not turned into an error."""
        row = {
            "at": _now(),
            "user": actor.user,
            "role": actor.role,
            "client": actor.client,
            "address": actor.address,
            "action": action,
            "session_id": session_id,
            "turn": turn,
            "question": masked(question),
            "sources": json.dumps([str(s) for s in dict.fromkeys(sources) if s], ensure_ascii=False),
            "detail": masked(detail),
        }
        try:
            with self.engine.connect().execution_options(write=True) as connection, connection.begin():
                connection.execute(insert(events).values(**row))
        except SQLAlchemyError:
            log.exception("audit row for %s could not be written", action)
            return False
        return True

    def recorded(self, action: str, session_id: str, turn: int) -> bool:
        """Whether a row for this action on this turn exists (a re-sent message must not be counted twice)."""
        query = select(func.count()).select_from(events).where(
            events.c.action == action, events.c.session_id == session_id, events.c.turn == turn
        )
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar())

    def events(self, since: dt.datetime | None = None, action: str | None = None) -> list[AuditEvent]:
        query = select(events).order_by(events.c.at, events.c.id)
        if since is not None:
            query = query.where(events.c.at >= since)
        if action is not None:
            query = query.where(events.c.action == action)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            AuditEvent(
                at=r.at, user=r.user, role=r.role, client=r.client, address=r.address, action=r.action,
                session_id=r.session_id, turn=r.turn, question=r.question, sources=json.loads(r.sources or "[]"),
                detail=r.detail,
            )
            for r in rows
        ]

    def purge(self, now: dt.datetime | None = None) -> int:
        """Delete rows older than the retention period; returns how many were deleted."""
        if not self.retention_days:
            return 0
        cutoff = (now or _now()) - dt.timedelta(days=self.retention_days)
        with self.engine.connect().execution_options(write=True) as connection, connection.begin():
            return int(connection.execute(delete(events).where(events.c.at < cutoff)).rowcount or 0)

    def start_daily_purge(self, interval_s: float = PURGE_INTERVAL_S) -> threading.Thread:
        """Purge once a day in a background thread (for the long-running web app)."""
        if self._purger is not None:
            return self._purger

        def loop() -> None:
            stop = threading.Event()
            while not stop.wait(interval_s):
                try:
                    self.purge()
                except SQLAlchemyError:
                    log.exception("audit purge failed")

        self._purger = threading.Thread(target=loop, name="audit-purge", daemon=True)
        self._purger.start()
        return self._purger

    def export_csv(self, output: Path, since: dt.datetime | None = None) -> int:
        """Write the rows (UTF-8 with BOM, for spreadsheets) atomically; returns how many rows."""
        rows = self.events(since=since)
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8-sig", newline="") as stream:
                writer = csv.writer(stream)
                writer.writerow(CSV_HEADERS)
                writer.writerows(event.csv_row() for event in rows)
            os.replace(temporary, output)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return len(rows)


def source_ids(citations: Iterable[object]) -> list[str]:
    """The source ids of an answer's citations (dicts with ``source_id``)."""
    return [str(c.get("source_id")) for c in citations if isinstance(c, dict) and c.get("source_id")]


# -- command line (python -m assistant.audit) -------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    from assistant.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m assistant.audit", description="監査ログの書き出しと整理")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="監査ログを CSV に書き出す（Excel で開ける UTF-8）")
    p.add_argument("--out", required=True, help="書き出す CSV ファイル")
    p.add_argument("--since", help="この日（YYYY-MM-DD）以降の記録だけを書き出す")
    sub.add_parser("purge", help="保存期間（audit_retention_days）を過ぎた記録を削除する")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        settings.ensure_dirs()
        audit = AuditLog.for_settings(settings, purge_now=False)
        if args.command == "export":
            count = audit.export_csv(Path(args.out), since=parse_since(args.since))
            audit.record(AUDIT_EXPORT, CLI_ACTOR, detail=f"{count} 件を書き出し（{args.since or '全期間'}）")
            print(f"監査ログ {count} 件を {args.out} に書き出しました")
        else:
            print(f"保存期間を過ぎた監査ログ {audit.purge()} 件を削除しました")
    except (AuditError, ConfigError) as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"エラー: ファイルを書き出せません: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
