"""The audit log: masked rows, retention, the CSV export for the help desk, the command line."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import audit as audit_module
from assistant.audit import (
    ASK,
    CHAT,
    CLI_ACTOR,
    CSV_HEADERS,
    NO_LOGIN,
    Actor,
    AuditError,
    AuditLog,
    parse_since,
)

from assistant.config import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PERSONAL = "私の個人番号は 1234 5678 9018、電話は 03-1234-5678、メールは taro@example.jp です。"
STAFF = Actor(user="tanaka", role="自治体職員", client="Web アプリ", address="192.0.2.1")


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", retention_days=30)


def read_csv(path: Path) -> list[list[str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf"), "a BOM, so that spreadsheets read UTF-8"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_a_row_has_who_when_what_which_sources_and_the_answer_id(log: AuditLog) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    log.record(CHAT, STAFF, question="子ども医療費助成で住民税を照会できますか", sources=["case-1", "qa-3", "case-1"],
               session_id="chat-abc", turn=2)
    (event,) = log.events()
    assert (event.user, event.role, event.client, event.address) == ("tanaka", "自治体職員", "Web アプリ", "192.0.2.1")
    assert event.action == CHAT and event.sources == ["case-1", "qa-3"]
    assert event.answer_id == "chat-abc#2" and before <= event.at
    log.record(ASK, CLI_ACTOR, question="届出は必要ですか")
    assert log.events(action=ASK)[0].answer_id == "" and CLI_ACTOR.who == NO_LOGIN


def test_nothing_personal_is_stored(log: AuditLog) -> None:
    log.record(CHAT, STAFF, question=PERSONAL, detail=f"コメント: {PERSONAL}")
    with log.engine.connect() as connection:
        stored = " ".join(str(v) for row in connection.exec_driver_sql("SELECT * FROM audit_events") for v in row)
    for value in ("1234 5678 9018", "123456789018", "03-1234-5678", "taro@example.jp"):
        assert value not in stored
    assert "マスク済" in stored


def test_old_rows_are_purged_on_opening_and_on_purge(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, retention_days=30)
    log.record(CHAT, STAFF, question="古い質問")
    log.record(CHAT, STAFF, question="新しい質問")
    with log.engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("UPDATE audit_events SET at = '2000-01-01 00:00:00' WHERE question = '古い質問'")
    assert [e.question for e in AuditLog(url, retention_days=30).events()] == ["新しい質問"], "purged on start"
    log.record(CHAT, STAFF, question="もう一つ")
    in_a_year = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=365)
    assert log.purge(now=in_a_year) == 2 and log.events() == []
    keep = AuditLog(url, retention_days=0)
    keep.record(CHAT, STAFF, question="無期限")
    assert keep.purge(now=in_a_year + dt.timedelta(days=3650)) == 0
    with pytest.raises(ConfigError, match="0 以上"):
        AuditLog(url, retention_days=-1)


def test_the_daily_purge_runs_in_the_background(log: AuditLog) -> None:
    calls: list[int] = []
    log.purge = lambda now=None: calls.append(1) or 0  # type: ignore[method-assign]
    thread = log.start_daily_purge(interval_s=0.05)
    assert thread.daemon and log.start_daily_purge() is thread
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) >= 2


def test_csv_export_for_the_help_desk(log: AuditLog, tmp_path: Path) -> None:
    log.record(CHAT, STAFF, question="=HYPERLINK(\"http://example.invalid\")", sources=["case-1"], session_id="s", turn=1)
    log.record(ASK, CLI_ACTOR, question="二つ目")
    out = tmp_path / "out" / "audit.csv"
    assert log.export_csv(out) == 2
    header, first, second = read_csv(out)
    assert header == CSV_HEADERS
    row = dict(zip(header, first))
    assert row["利用者"] == "tanaka" and row["操作"] == "相談チャット" and row["回答ID"] == "s#1" and row["出典"] == "case-1"
    assert row["質問・入力（マスク済み）"].startswith("'="), "a formula is written as text"
    assert dict(zip(header, second))["利用者"] == NO_LOGIN and dict(zip(header, second))["利用元"] == "コマンドライン"
    assert dt.datetime.fromisoformat(row["日時"]).tzinfo is not None
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert log.export_csv(out, since=parse_since(tomorrow)) == 0 and len(read_csv(out)) == 1
    assert not list(out.parent.glob(".*.tmp")), "written through a temporary file"


def test_since_must_be_a_date() -> None:
    assert parse_since("") is None
    with pytest.raises(AuditError, match="YYYY-MM-DD"):
        parse_since("令和7年4月1日")


def test_command_line_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    from assistant.config import load_settings

    AuditLog.for_settings(load_settings()).record(CHAT, STAFF, question="質問")
    out = tmp_path / "audit.csv"
    assert audit_module.main(["export", "--out", str(out), "--since", "2000-01-01"]) == 0
    assert "1 件" in capsys.readouterr().out and len(read_csv(out)) == 2
    assert audit_module.main(["export", "--out", str(out), "--since", "昨日"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    done = subprocess.run(
        [sys.executable, "-m", "assistant.audit", "purge"], capture_output=True, text=True, cwd=PROJECT_ROOT,
        env={"ASSISTANT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}, timeout=60,
    )
    assert done.returncode == 0 and "削除しました" in done.stdout, done.stderr


def test_the_command_line_ask_and_chat_are_audited(assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    import copy
    import dataclasses

    from assistant import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    clone = copy.copy(assistant)
    clone.settings = dataclasses.replace(assistant.settings, database_url=url)
    monkeypatch.setattr(cli, "_assistant", lambda args: clone)
    question = "子どもの医療費助成で住民税の情報を照会できますか。連絡先は 090-1234-5678 です"
    assert cli.main(["ask", question, "--json"]) == 0
    assert cli.main(["chat", "--session", "cli-audit", "--message", question, "--json"]) == 0
    capsys.readouterr()
    ask, chat = AuditLog(url).events()
    assert (ask.action, ask.user, ask.client, ask.answer_id) == (ASK, None, "コマンドライン", "")
    assert (chat.action, chat.answer_id) == (CHAT, "cli-audit#1")
    assert ask.sources and chat.sources
    assert all("090-1234-5678" not in e.question and "住民税" in e.question for e in (ask, chat))
