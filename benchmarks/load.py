"""Bounded load test of the web app on this machine (not a unit test).

Starts `python app.py` on 127.0.0.1 with its own ASSISTANT_HOME (as tests/ui/ui_support.py does), then
drives simulated users concurrently through Gradio's HTTP API (`/gradio_api/call/<name>`): chat users
who ask several questions each, and users who run the 事前チェックリスト to the end. The load stops
issuing requests at the time limit. Afterwards every acknowledged answer is looked up in the database:
each chat turn must be stored exactly once under its session and turn number with the question sent
and the answer received, each checklist answer exactly once under the step it answered, and each
answer must have its audit row.

Run: .venv/bin/python benchmarks/load.py [--chat-users 50] [--checklist-users 5] [--seconds 120]
Against running servers (scripts/servers.sh): --url PROXY_URL --database-url URL [--kill-pid WORKER_PID
--kill-after S]: the proxy's workers share the database; one worker is killed half-way and the users on it
carry on through the other (each simulated user keeps the proxy's cookie, as a browser does).
Prints one JSON summary (failed requests, lost / misfiled answers, p50 / p95 latency); exit code 1
when anything failed or was lost. With `--kill-after S` the server is killed (SIGKILL) S seconds in:
requests after that fail, but nothing acknowledged before it may be missing.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from ui_support import checklist_answer, copy_index, start_app, stop_app  # noqa: E402

QUESTIONS = [
    "子どもの医療費助成で住民税の情報を照会したいです。届出は必要ですか？",
    "ひとり親家庭の医療費助成で地方税関係情報を照会できますか？",
    "独自利用事務の届出にはどんな種類がありますか？",
    "届出書の差替えはどのようなときに使いますか？",
    "就学援助の事務で生活保護の情報を照会できますか？",
    "独自利用事務で特定個人情報保護評価は必要ですか？",
    "障害児の育成手当で所得の情報を照会したいのですが、当てはまる事例はありますか？",
]
FOLLOW_UPS = [
    "その場合、届出はいつまでに出せばよいですか？",
    "必要な書類は何ですか？",
    "変更の届出とはどう違いますか？",
    "条例の改正も必要ですか？",
]
REQUEST_TIMEOUT_S = 120
MAX_CHECKLIST_INPUTS = 80


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stored_form(text: str) -> str:
    """How the app stores a typed text that holds no personal data (NFKC, trimmed)."""
    return unicodedata.normalize("NFKC", text.strip())


def stored_checklist_answer(step: str, answer: str) -> str:
    """How the checklist stores an answer: masked like every answer, the person's name as a name."""
    from assistant.dialogue.checklist import PERSON_STEP, mask_person
    from assistant.privacy import mask_personal_data

    if answer == "スキップ":
        return "（スキップ）"
    text = stored_form(answer)
    return mask_person(text) if step == PERSON_STEP else mask_personal_data(text)[0]


class RequestFailed(RuntimeError):
    pass


def checklist_result(outputs: list[Any]) -> dict[str, Any]:
    """The checklist state among a checklist endpoint's outputs (the page's JSON view)."""
    for value in reversed(outputs):
        if isinstance(value, dict) and "progress" in value and "step" in value:
            return value
    raise RequestFailed(f"checklist: no checklist state in the outputs {str(outputs)[:200]}")


class Api:
    """Gradio's two-step HTTP API: POST the inputs, then read the event stream until `complete`."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/gradio_api/call/"
        self.http = httpx.Client(timeout=REQUEST_TIMEOUT_S)

    def call(self, name: str, *data: Any) -> list[Any]:
        posted = self.http.post(self.url + name, json={"data": list(data)})
        if posted.status_code != 200:
            raise RequestFailed(f"{name}: HTTP {posted.status_code} {posted.text[:200]}")
        event_id = posted.json()["event_id"]
        event = None
        with self.http.stream("GET", f"{self.url}{name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in {"complete", "error"}:
                    payload = json.loads(line.split(":", 1)[1].strip() or "null")
                    if event == "error":
                        message = payload.get("error") if isinstance(payload, dict) else payload
                        raise RequestFailed(f"{name}: {message}")
                    return payload
        raise RequestFailed(f"{name}: the event stream ended without a result")

    def reconnect(self) -> None:
        """New connections, keeping the proxy's cookie (a browser after a failed request)."""
        cookies = self.http.cookies
        self.http.close()
        self.http = httpx.Client(timeout=REQUEST_TIMEOUT_S, cookies=cookies)

    def close(self) -> None:
        self.http.close()


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"chat": [], "checklist": []})
    failures: list[str] = field(default_factory=list)
    chat_acks: list[tuple[str, int, str, str]] = field(default_factory=list)  # session, turn, question, answer
    checklist_acks: list[tuple[str, int, str, str]] = field(default_factory=list)  # session, order, step, answer
    not_started: int = 0
    # Requests whose answer did not arrive (a cut connection, an error) and that the user sent again, as a
    # person does after an error: a chat question again with the history they have, a checklist by reopening it.
    resent: list[str] = field(default_factory=list)
    # Session ids carry the run, so that a database that already holds earlier runs verifies this one only.
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def timed(self, kind: str, started: float) -> None:
        with self.lock:
            self.latencies[kind].append(time.monotonic() - started)

    def failed(self, message: str) -> None:
        with self.lock:
            self.failures.append(message[:300])

    def resending(self, message: str) -> None:
        with self.lock:
            self.resent.append(message[:300])


def chat_user(url: str, number: int, turns: int, deadline: float, results: Results, seed: int) -> None:
    rng = random.Random(seed * 1000 + number)
    api = Api(url)
    session = f"load-chat-{results.run}-{seed}-{number:03d}"
    history: list[Any] = []
    try:
        time.sleep(rng.uniform(0, 5))  # users arrive over the first seconds
        for turn in range(1, turns + 1):
            if time.monotonic() >= deadline:
                with results.lock:
                    results.not_started += turns - turn + 1
                return
            base = QUESTIONS[number % len(QUESTIONS)] if turn == 1 else FOLLOW_UPS[(number + turn) % len(FOLLOW_UPS)]
            question = f"{base}（照合 U{number:03d}-T{turn}）"
            started = time.monotonic()
            outputs = None
            for attempt in range(2):  # a lost answer: the same question once more, with the same history
                try:
                    # chatbot, box, sources, suggestions, consultation list, result (no browser id: not listed)
                    outputs = api.call("chat", session, question, history, "")
                    break
                except (RequestFailed, httpx.HTTPError, ValueError) as exc:
                    if attempt:
                        results.failed(f"chat {session} turn {turn}: {exc}")
                    else:
                        results.resending(f"chat {session} turn {turn}: {exc}")
                        api.reconnect()
            if outputs is None:
                continue
            try:
                history, result = outputs[0], outputs[-1]
                shown = re.findall(r"#cite-(\d+)-", str(history[-1].get("content") if history else ""))
                shown_turn = int(shown[0]) if shown else int(result["turn"])  # the answer's [n] name its turn
            except (IndexError, KeyError, TypeError, ValueError) as exc:
                results.failed(f"chat {session} turn {turn}: unexpected outputs: {exc}")
                continue
            results.timed("chat", started)
            with results.lock:
                results.chat_acks.append((session, int(result["turn"]), question, str(result["answer"])))
            if int(shown_turn) != int(result["turn"]) or result.get("session") != session:
                results.failed(f"chat {session}: the page shows turn {shown_turn} for stored turn {result['turn']}")
            time.sleep(rng.uniform(0.5, 2.0))
    finally:
        api.close()


def checklist_user(url: str, number: int, deadline: float, results: Results, seed: int) -> None:
    rng = random.Random(seed * 2000 + number)
    api = Api(url)
    run = 0
    try:
        time.sleep(rng.uniform(0, 3))
        while time.monotonic() < deadline:
            run += 1
            session = f"load-check-{results.run}-{seed}-{number:02d}-{run}"
            try:
                result = checklist_result(api.call("checklist_start", session))
            except (RequestFailed, httpx.HTTPError, ValueError) as exc:
                results.failed(f"checklist {session} start: {exc}")
                time.sleep(1)
                continue
            repeats, last_step, order = 0, None, 0
            for _ in range(MAX_CHECKLIST_INPUTS):
                if result["finished"] or time.monotonic() >= deadline:
                    break
                repeats = repeats + 1 if result["step"] == last_step else 0
                last_step = result["step"]
                answer = checklist_answer(result, repeats)
                started = time.monotonic()
                try:
                    result = checklist_result(api.call("checklist_answer", session, answer))
                except (RequestFailed, httpx.HTTPError, ValueError) as exc:
                    # The user opens the checklist again: it resumes at the first question without an answer
                    # (the lost answer may have been stored or not), and they go on from there.
                    results.resending(f"checklist {session} step {last_step}: {exc}")
                    api.reconnect()
                    try:
                        result = checklist_result(api.call("checklist_start", session))
                    except (RequestFailed, httpx.HTTPError, ValueError) as again:
                        results.failed(f"checklist {session} step {last_step}: {exc}; reopening: {again}")
                        break
                    continue
                results.timed("checklist", started)
                if not result.get("accepted", True):
                    results.failed(f"checklist {session} step {last_step}: not recorded: {result.get('message')}")
                    break
                order += 1
                with results.lock:
                    results.checklist_acks.append((session, order, str(last_step), answer))
                time.sleep(rng.uniform(0.2, 0.8))
    finally:
        api.close()


def verify(database_url: str, results: Results) -> dict[str, Any]:
    """Look every acknowledged answer up in the database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        turn_rows = connection.execute(text(
            "SELECT session_id, turn, role, text, result FROM dialogue_turns WHERE kind = 'chat' AND session_id LIKE :chat"
        ), {"chat": f"load-chat-{results.run}-%"}).all()
        answer_rows = connection.execute(text(
            "SELECT session_id, step, answer, id FROM checklist_answers WHERE session_id LIKE :check ORDER BY id"
        ), {"check": f"load-check-{results.run}-%"}).all()
        audit_rows = connection.execute(text(
            "SELECT action, session_id, turn FROM audit_events WHERE session_id LIKE :chat OR session_id LIKE :check"
        ), {"chat": f"load-chat-{results.run}-%", "check": f"load-check-{results.run}-%"}).all()
    engine.dispose()

    stored: dict[tuple[str, int, str], list[tuple[str, Any]]] = {}
    for row in turn_rows:
        stored.setdefault((row.session_id, row.turn, row.role), []).append((row.text, row.result))
    lost = misfiled = duplicated = 0
    problems: list[str] = []
    for session, turn, question, answer in results.chat_acks:
        users, replies = stored.get((session, turn, "user"), []), stored.get((session, turn, "assistant"), [])
        if not users or not replies:
            lost += 1
            problems.append(f"lost: {session}#{turn}")
        elif len(users) > 1 or len(replies) > 1:
            duplicated += 1
            problems.append(f"duplicated: {session}#{turn}")
        elif users[0][0] != stored_form(question) or replies[0][0] != answer or json.loads(replies[0][1])["session"] != session:
            misfiled += 1
            problems.append(f"misfiled: {session}#{turn}: stored {users[0][0][:40]!r} for {question[:40]!r}")
    acknowledged = {(s, t) for s, t, _, _ in results.chat_acks}
    unacknowledged_turns = len({(s, t) for (s, t, _role) in stored} - acknowledged)

    by_session: dict[str, list[tuple[str, str]]] = {}
    for row in answer_rows:
        by_session.setdefault(row.session_id, []).append((row.step, row.answer))
    sent: dict[str, list[tuple[str, str]]] = {}
    for session, _order, step, answer in sorted(results.checklist_acks, key=lambda a: (a[0], a[1])):
        sent.setdefault(session, []).append((step, stored_checklist_answer(step, answer)))
    checklist_lost = checklist_misfiled = checklist_unacknowledged = 0
    for session, expected in sent.items():
        kept = by_session.get(session, [])
        missing, extra = _unmatched(expected, kept)
        checklist_unacknowledged += len(extra)
        for step, answer in missing:
            if any(s == step for s, _a in kept):
                checklist_misfiled += 1
                stored_there = [a for s, a in kept if s == step]
                problems.append(f"checklist misfiled: {session}: {step}: sent {answer!r}, stored {stored_there}")
            else:
                checklist_lost += 1
                problems.append(f"checklist lost: {session}: {step}")

    audited = Counter((r.action, r.session_id, r.turn) for r in audit_rows if r.action == "chat")
    audit_missing = sum(1 for s, t, _, _ in results.chat_acks if audited[("chat", s, t)] != 1)
    checklist_audited = Counter(r.session_id for r in audit_rows if r.action == "checklist")
    # One row per stored answer; an answer stored without acknowledgement may lack its row (the worker stopped).
    for session, expected in sent.items():
        rows = checklist_audited[session]
        audit_missing += max(0, len(expected) - rows) + max(0, rows - len(by_session.get(session, [])))
    return {
        "chat_turns_lost": lost,
        "chat_turns_misfiled": misfiled,
        "chat_turns_duplicated": duplicated,
        "chat_turns_stored_without_acknowledgement": unacknowledged_turns,
        "checklist_answers_lost": checklist_lost,
        "checklist_answers_misfiled": checklist_misfiled,
        "checklist_answers_stored_without_acknowledgement": checklist_unacknowledged,
        "audit_rows_missing_or_doubled": audit_missing,
        "problems": problems[:20],
    }


def _unmatched(expected: list[tuple[str, str]], kept: list[tuple[str, str]]) -> tuple[list, list]:
    """Acknowledged (step, answer) pairs not found in order among the stored ones, and the stored ones left over
    (answers whose acknowledgement was lost: stored, then sent again after reopening)."""
    missing, extra, position = [], [], 0
    for pair in expected:
        found = next((i for i in range(position, len(kept)) if kept[i] == pair), None)
        if found is None:
            missing.append(pair)
            continue
        extra.extend(kept[position:found])
        position = found + 1
    extra.extend(kept[position:])
    return missing, extra


def guarded(user: Any, results: Results) -> Any:
    """Run a simulated user; anything it did not expect counts as a failed request."""

    def run(*args: Any) -> None:
        try:
            user(*args)
        except Exception as exc:  # noqa: BLE001 - reported in the summary
            results.failed(f"{user.__name__}: unexpected {type(exc).__name__}: {exc}")

    return run


def run_load(url: str, database_url: str, *, chat_users: int, checklist_users: int, turns: int, seconds: float,
             seed: int = 1) -> dict[str, Any]:
    results = Results()
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=guarded(chat_user, results), args=(url, n, turns, deadline, results, seed), daemon=True)
        for n in range(chat_users)
    ] + [
        threading.Thread(target=guarded(checklist_user, results), args=(url, n, deadline, results, seed), daemon=True)
        for n in range(checklist_users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline + REQUEST_TIMEOUT_S - time.monotonic()))
    wall = time.monotonic() - started
    checks = verify(database_url, results)
    everything = results.latencies["chat"] + results.latencies["checklist"]
    failed_by_kind = Counter(f.split(" ", 1)[0] for f in results.failures)
    failure_kinds = Counter(f.split(": ", 2)[-1][:80] for f in results.failures)
    summary: dict[str, Any] = {
        "chat_users": chat_users,
        "checklist_users": checklist_users,
        "turns_per_chat_user": turns,
        "time_limit_s": seconds,
        "wall_s": round(wall, 1),
        "requests_acknowledged": len(everything),
        "chat_turns_acknowledged": len(results.chat_acks),
        "checklist_answers_acknowledged": len(results.checklist_acks),
        "chat_turns_not_started_before_the_limit": results.not_started,
        "requests_sent_again_after_a_lost_answer": len(results.resent),
        "sent_again_by_kind": dict(Counter(m.split(" ", 1)[0] for m in results.resent)),
        "sent_again_messages": dict(Counter(m.split(": ", 1)[-1][:80] for m in results.resent).most_common(5)),
        "failed_requests": len(results.failures),
        "failed_by_kind": dict(failed_by_kind),
        "failure_messages": dict(failure_kinds.most_common(5)),
        "latency_s": {
            kind: {
                "p50": round(percentile(values, 0.5), 2) if values else None,
                "p95": round(percentile(values, 0.95), 2) if values else None,
                "mean": round(statistics.fmean(values), 2) if values else None,
            }
            for kind, values in (("chat", results.latencies["chat"]), ("checklist", results.latencies["checklist"]),
                                 ("all", everything))
        },
        **checks,
    }
    summary["ok"] = not results.failures and not any(
        summary[key] for key in summary if key.endswith(("_lost", "_misfiled", "_duplicated", "_missing_or_doubled"))
    )
    return summary


def _against_servers(args: argparse.Namespace) -> int:
    import os
    import signal

    if not args.database_url:
        print("--url には --database-url が必要です", file=sys.stderr)
        return 2
    killer = None
    if args.kill_pid and args.kill_after:
        killer = threading.Timer(args.kill_after, os.kill, (args.kill_pid, signal.SIGKILL))
        killer.start()
    try:
        summary = run_load(args.url, args.database_url, chat_users=args.chat_users,
                           checklist_users=args.checklist_users, turns=args.turns, seconds=args.seconds, seed=args.seed)
    finally:
        if killer:
            killer.cancel()
    summary["url"] = args.url
    if killer:
        # Requests in flight on the killed worker fail; nothing acknowledged may be missing.
        summary["killed_worker_pid"], summary["killed_after_s"] = args.kill_pid, args.kill_after
        summary["ok"] = not any(summary[key] for key in summary if key.endswith(("_lost", "_misfiled", "_duplicated")))
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0 if summary["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Web アプリの負荷試験（このコンピューター上、時間制限つき）")
    parser.add_argument("--chat-users", type=int, default=50)
    parser.add_argument("--checklist-users", type=int, default=5)
    parser.add_argument("--turns", type=int, default=3, help="相談チャットの利用者ごとの質問数")
    parser.add_argument("--seconds", type=float, default=120, help="この時間を過ぎたら新しい要求を出さない")
    parser.add_argument("--index-from", type=Path, help="索引とモデルのキャッシュを流用する ASSISTANT_HOME")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-after", type=float, help="この秒数の後にサーバーを強制終了する（SIGKILL）")
    parser.add_argument("--url", help="起動済みの中継サーバー（scripts/servers.sh の URL）に負荷をかける")
    parser.add_argument("--database-url", help="--url のときに照合するデータベース（ENV の ASSISTANT_DATABASE_URL）")
    parser.add_argument("--kill-pid", type=int, help="--url のとき --kill-after 秒後に強制終了するワーカーのプロセス ID")
    args = parser.parse_args(argv)
    if args.url:
        return _against_servers(args)
    with tempfile.TemporaryDirectory(prefix="load-") as folder:
        home = Path(folder) / "home"
        home.mkdir()
        if args.index_from:
            copy_index(args.index_from, home)
        print("アプリを起動しています（索引がなければ作成します）…", file=sys.stderr, flush=True)
        app = start_app(home, Path(folder) / "app.log")
        killer = threading.Timer(args.kill_after, app.process.kill) if args.kill_after else None
        try:
            if killer:
                killer.start()
            summary = run_load(app.url, f"sqlite:///{home / 'assistant.db'}", chat_users=args.chat_users, checklist_users=args.checklist_users,
                               turns=args.turns, seconds=args.seconds, seed=args.seed)
            summary["outside_connections"] = app.outside_connections()
        finally:
            if killer:
                killer.cancel()
            stop_app(app)
        if killer:
            # Failures after the kill are expected; what was acknowledged before it must all be there.
            summary["killed_after_s"] = args.kill_after
            summary["ok"] = not any(
                summary[key] for key in summary if key.endswith(("_lost", "_misfiled", "_duplicated"))
            )
        if not summary["ok"]:
            print(app.log_text()[-3000:], file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
