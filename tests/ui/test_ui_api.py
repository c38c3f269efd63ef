"""Every API endpoint of the running app, through gradio_client (the way other tools call it)."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from ui_support import CHECKLIST_ANSWERS, RunningApp, checklist_answer
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from assistant.ui.render import answer_markdown, markdown_text

pytestmark = pytest.mark.slow

QUESTION = "子どもの医療費助成で、住民税の情報を情報連携で照会したいです。届出は必要ですか？"
DOCUMENTED = {
    "session_start",
    "chat", "chat_suggestion", "chat_feedback", "chat_new_session", "chat_history", "chat_source",
    "checklist_start", "checklist_answer", "checklist_yes", "checklist_no", "checklist_unknown",
    "checklist_skip", "checklist_back", "checklist_new_session", "checklist_export",
    "reply_draft", "reply_export",
    "cases_search", "case_detail",
    "admin_ingest", "admin_remove", "admin_rebuild", "admin_status", "admin_open", "admin_audit_export",
    "knowledge_facts", "knowledge_open", "knowledge_show", "knowledge_preview", "knowledge_set", "knowledge_revert",
    "knowledge_export", "knowledge_import_preview", "knowledge_import",
}
MAX_CHECKLIST_INPUTS = 120


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def test_every_endpoint_is_listed_under_its_stable_name(client: Client) -> None:
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert names == {f"/{name}" for name in DOCUMENTED}


def test_session_start_gives_fresh_session_ids(client: Client) -> None:
    label, chat_session, checklist_session = client.predict(api_name="/session_start")
    assert "ログインなし" in label and "このコンピューター" in label
    assert chat_session.startswith("chat-") and checklist_session.startswith("check-")
    assert client.predict(api_name="/session_start")[1] != chat_session


# -- 相談チャット --------------------------------------------------------------------------------
def test_chat_shows_progress_then_the_answer_with_cited_sources(client: Client) -> None:
    job = client.submit("api-chat-1", QUESTION, [], api_name="/chat")
    history, box, sources, suggestions, conversations, result = job.result(timeout=120)
    updates = job.outputs()
    working = [text_of(update[0][-1]) for update in updates[:-1]]
    assert any(w.startswith("⏳") for w in working), "the page says what is being done while the answer is made"
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert text_of(history[0]) == QUESTION and text_of(history[-1]) == answer_markdown(result["answer"], 1)
    assert "](#cite-1-1)" in text_of(history[-1]), "the [n] of the answer open its sources"
    assert box == "" and result["session"] == "api-chat-1" and result["turn"] == 1
    assert conversations["choices"] == [], "an API caller without a browser id has no consultation list"
    assert result["citations"], "an answer about case (1) cites its sources"
    for citation in result["citations"]:
        assert citation["title"] in sources.replace("&amp;", "&")
        assert citation["confidence"] in {"確認済み", "要確認"}
    assert "<mark>" in sources and "時点" in sources
    assert isinstance(suggestions, dict) and suggestions.get("visible") == bool(result["suggestions"])


def test_chat_follow_up_history_and_feedback_are_stored(client: Client, running_app: RunningApp) -> None:
    session = "api-chat-2"
    first = client.predict(session, QUESTION, [], api_name="/chat")
    turns = 1
    if first[5]["suggestions"]:
        follow = client.predict(session, 0, first[0], api_name="/chat_suggestion")
        assert follow[5]["turn"] == 2 and len(follow[0]) == 4
        assert text_of(follow[0][2]) == first[5]["suggestions"][0]
        turns = 2
    restored = client.predict(session, api_name="/chat_history")
    assert restored[0]["feedback_value"] == [None] * turns, "no answer is rated yet"
    assert len(restored[0]["value"]) == 2 * turns and restored[3]["turn"] == turns
    assert "住民税の情報を情報連携で照会" in text_of(restored[0]["value"][0])  # stored after NFKC and masking
    message = client.predict(session, 1, "👎 役に立たなかった", "出典の時点が古い", api_name="/chat_feedback")
    assert "1 番目の回答に 👎" in message
    assert client.predict(session, api_name="/chat_history")[0]["feedback_value"][0] == "Dislike", "shown on resume"
    from assistant.dialogue.store import DialogueStore

    stored = DialogueStore(f"sqlite:///{running_app.home / 'assistant.db'}").feedback(session)
    assert [(f.turn, f.rating, f.comment) for f in stored] == [(1, -1, "出典の時点が古い")]
    with pytest.raises(AppError, match="ターン 99"):
        client.predict(session, 99, "👍 役に立った", "", api_name="/chat_feedback")


def test_a_question_sent_again_with_the_same_history_gets_the_stored_answer(
    client: Client, running_app: RunningApp
) -> None:
    """What a page or tool does when an answer was lost on the way (a worker stopped): it sends the question
    again, from a new connection, with the history it has, and gets the turn that was stored, once, with one
    audit row."""
    from assistant.audit import AuditLog
    from assistant.dialogue.store import DialogueStore

    session = "api-chat-resend"
    first = client.predict(session, QUESTION, [], api_name="/chat")
    follow = "その場合、届出はいつまでに出せばよいですか？"
    answered = client.predict(session, follow, first[0], api_name="/chat")
    reconnected = Client(running_app.url, verbose=False)  # the page's own state was in the worker that stopped
    again = reconnected.predict(session, follow, first[0], api_name="/chat")
    assert again[5]["turn"] == answered[5]["turn"] == 2 and again[5]["replayed"]
    assert again[5]["answer"] == answered[5]["answer"] and len(again[0]) == 4
    url = f"sqlite:///{running_app.home / 'assistant.db'}"
    assert DialogueStore(url).turn_count("chat", session) == 2
    rows = [e for e in AuditLog(url, purge_now=False).events(action="chat") if e.session_id == session]
    assert sorted(e.turn for e in rows) == [1, 2]
    # A page cut off mid-answer still shows the question and the working notice; sent again, the exchange
    # appears once, with the stored answer.
    def message(role: str, text: str) -> dict[str, Any]:
        return {"role": role, "content": [{"type": "text", "text": text}]}

    cut_off = [*first[0], message("user", follow), message("assistant", "⏳ 回答を準備しています…")]
    resent = Client(running_app.url, verbose=False).predict(session, follow, cut_off, api_name="/chat")
    assert resent[5]["replayed"] and resent[5]["turn"] == 2 and len(resent[0]) == 4
    assert DialogueStore(url).turn_count("chat", session) == 2


def test_an_empty_question_changes_nothing_and_bad_input_is_refused_in_japanese(
    client: Client, running_app: RunningApp
) -> None:
    from assistant.dialogue.store import DialogueStore

    unchanged = client.predict("api-chat-3", "   ", [], api_name="/chat")
    assert all(isinstance(output, dict) and output.get("__type__") == "update" for output in unchanged)
    assert set().union(*(output.keys() for output in unchanged)) <= {"__type__", "props"}, "no output is replaced"
    assert DialogueStore(f"sqlite:///{running_app.home / 'assistant.db'}").turns("chat", "api-chat-3") == []
    with pytest.raises(AppError, match="セッション ID"):
        client.predict("", QUESTION, [], api_name="/chat")
    with pytest.raises(AppError, match="長すぎ|文字以内"):
        client.predict("api-chat-3", "あ" * 100_000, [], api_name="/chat")


def test_chat_new_session_clears_the_page(client: Client) -> None:
    session, history, sources, _, conversations, result = client.predict(api_name="/chat_new_session")
    assert session.startswith("chat-") and history == [] and result is None and conversations["value"] is None
    assert "質問すると" in sources


def test_a_browser_lists_its_consultations_titled_by_the_first_question(client: Client) -> None:
    browser = "api-browser-" + "x" * 16
    session = f"api-list-{int(time.time())}"
    *_, conversations, result = client.predict(session, "ひとり親家庭の医療費助成はどの事例ですか", [], browser,
                                               api_name="/chat")
    listed = dict((value, label) for label, value in conversations["choices"])
    assert listed[session].startswith("ひとり親家庭の医療費助成はどの事例ですか")
    assert conversations["value"] == session
    *_, later, _ = client.predict(session, "届出はいつ出せますか", [], browser, api_name="/chat")
    assert [value for _label, value in later["choices"]].count(session) == 1
    other = client.predict("api-list-other", QUESTION, [], "api-browser-" + "y" * 16, api_name="/chat")[4]
    assert session not in [value for _label, value in other["choices"]], "another browser does not see it"


def test_a_marker_opens_that_answers_source(client: Client) -> None:
    session = "api-chat-source"
    first = client.predict(session, "子どもの医療費助成の準ずる法定事務は何ですか？", [], api_name="/chat")[-1]
    second = client.predict(session, "市営住宅の管理事務はどの事例ですか", [], api_name="/chat")[-1]
    number = first["citations"][0]["number"]
    opened = client.predict(session, f"1:{number}", api_name="/chat_source")
    assert "1 番目の回答の出典" in opened and 'class="citation active"' in opened
    assert first["citations"][0]["title"] in opened.replace("&amp;", "&")
    assert second["citations"][0]["source_id"] not in {c["source_id"] for c in first["citations"]}
    assert f'data-source-id="{second["citations"][0]["source_id"]}"' not in opened, "the panel follows answer 1"
    with pytest.raises(AppError, match="出典 \\[99\\]"):
        client.predict(session, "1:99", api_name="/chat_source")
    with pytest.raises(AppError, match="回答の番号:出典の番号"):
        client.predict(session, "x", api_name="/chat_source")


# -- 事前チェックリスト --------------------------------------------------------------------------
def test_checklist_buttons_move_one_question_at_a_time(client: Client) -> None:
    session = "api-check-buttons"
    start = client.predict(session, api_name="/checklist_start")[-1]
    assert start["progress"]["done"] == 0 and start["progress"]["total"] > 0 and not start["finished"]
    named = client.predict(session, CHECKLIST_ANSWERS["affair-name"], api_name="/checklist_answer")[-1]
    assert named["progress"]["done"] == 1 and named["step"] != start["step"]
    back = client.predict(session, api_name="/checklist_back")[-1]
    assert back["step"] == start["step"]
    skipped = client.predict(session, api_name="/checklist_skip")[-1]
    assert skipped["step"] != start["step"]
    for endpoint in ("/checklist_yes", "/checklist_no", "/checklist_unknown"):
        question, progress, *_ = client.predict(session, api_name=endpoint)
        assert "### " in question and "問（" in progress
    resumed = client.predict(session, api_name="/checklist_start")[-1]
    assert resumed["progress"]["done"] >= 1, "starting again with the same id resumes"
    with pytest.raises(AppError, match="回答を入力"):
        client.predict(session, "  ", api_name="/checklist_answer")


def test_checklist_runs_to_the_end_and_exports_the_sheet(client: Client) -> None:
    session = "api-check-full"
    result = client.predict(session, api_name="/checklist_start")[-1]
    repeats, last_step = 0, None
    for _ in range(MAX_CHECKLIST_INPUTS):
        if result["finished"]:
            break
        repeats = repeats + 1 if result["step"] == last_step else 0
        last_step = result["step"]
        result = client.predict(session, checklist_answer(result, repeats), api_name="/checklist_answer")[-1]
    assert result["finished"], f"the checklist did not finish: {result}"
    assert result["progress"]["done"] <= result["progress"]["total"]
    markdown = Path(client.predict(session, "Markdown (.md)", api_name="/checklist_export"))
    assert markdown.suffix == ".md"
    assert CHECKLIST_ANSWERS["affair-name"] in markdown.read_text(encoding="utf-8")
    pdf = Path(client.predict(session, "PDF (.pdf)", "山田 太郎", "", api_name="/checklist_export"))
    assert pdf.suffix == ".pdf" and pdf.read_bytes().startswith(b"%PDF")
    from pypdf import PdfReader

    assert "山田 太郎" in "".join(page.extract_text() for page in PdfReader(str(pdf)).pages)
    word = Path(client.predict(session, "Word (.docx)", api_name="/checklist_export"))
    assert word.suffix == ".docx" and zipfile.is_zipfile(word)
    import docx

    assert CHECKLIST_ANSWERS["affair-name"] in "\n".join(p.text for p in docx.Document(str(word)).paragraphs) + "\n".join(
        cell.text for table in docx.Document(str(word)).tables for row in table.rows for cell in row.cells
    )


def test_checklist_session_ids_cannot_leave_the_app_folder(client: Client, running_app: RunningApp) -> None:
    hostile = "../../../../../outside/x"
    before = set(running_app.home.parent.glob("**/outside"))  # other tests of the session make such folders on purpose
    with pytest.raises(AppError, match="セッション ID"):
        client.predict(hostile, api_name="/checklist_start")
    with pytest.raises(AppError, match="セッション ID"):
        client.predict(hostile, "Markdown (.md)", api_name="/checklist_export")
    assert set(running_app.home.parent.glob("**/outside")) == before, "nothing was written outside ASSISTANT_HOME"
    client.predict("api-check-export", api_name="/checklist_start")
    client.predict("api-check-export", "Markdown (.md)", api_name="/checklist_export")
    served = list((running_app.home / "exports" / "web").glob("事前相談シート-api-check-export-*.md"))
    assert len(served) == 1 and served[0].resolve().is_relative_to(running_app.home.resolve())


def test_an_answer_to_a_question_another_tab_answered_first_is_not_recorded(client: Client, running_app: RunningApp) -> None:
    other_tab = Client(running_app.url, verbose=False)
    session = "api-check-two-tabs"
    assert client.predict(session, api_name="/checklist_start")[-1]["step"] == "profile-municipality"
    assert other_tab.predict(session, api_name="/checklist_start")[-1]["step"] == "profile-municipality"
    first = client.predict(session, "〇〇市", api_name="/checklist_answer")[-1]
    assert first["accepted"] and first["step"] == "profile-department"
    late = other_tab.predict(session, "△△町", api_name="/checklist_answer")[-1]
    assert late["accepted"] is False and "記録していません" in late["message"]
    assert late["step"] == "profile-department" and late["progress"]["done"] == 1
    answered = other_tab.predict(session, "こども家庭課", api_name="/checklist_answer")[-1]
    assert answered["accepted"] and answered["progress"]["done"] == 2
    items = {item["step"]: item["answer"] for item in answered["items"]}
    assert items["profile-municipality"] == "〇〇市" and items["profile-department"] == "こども家庭課"


def test_checklist_new_session(client: Client) -> None:
    session, question, progress, *_ = client.predict(api_name="/checklist_new_session")
    assert session.startswith("check-") and "開始／再開" in question and "0 / 0" in progress


# -- 回答案作成 ---------------------------------------------------------------------------------
def test_reply_draft_masks_personal_data_and_exports(client: Client) -> None:
    inquiry = "子ども医療費助成で住民税情報を照会したいのですが、どの事例に当たりますか。担当: 山田（電話 03-1234-5678）"
    draft, question_map, letter, sources, note, result = client.predict(inquiry, api_name="/reply_draft")
    assert draft.strip() and result["citations"]
    assert "回答案の段落" in question_map and "1." in question_map
    assert letter.startswith("[1] ") and result["citations"][0]["label"] in letter
    assert not any(mark in letter for mark in (".yaml", ".md", "qa-", "case-", "doc-"))
    assert "03-1234-5678" not in draft
    assert "電話番号" in note
    assert result["citations"][0]["title"] in sources.replace("&amp;", "&")
    edited = draft + "\n（担当者が追記しました）"
    text_file = Path(client.predict(edited, "テキスト (.txt)", api_name="/reply_export"))
    assert "担当者が追記しました" in text_file.read_text(encoding="utf-8")  # the edited text is what is saved
    word = Path(client.predict(edited, "Word (.docx)", api_name="/reply_export"))
    assert zipfile.is_zipfile(word)
    with pytest.raises(AppError, match="問い合わせ文"):
        client.predict(" ", api_name="/reply_draft")


# -- 事例一覧 -----------------------------------------------------------------------------------
def test_cases_search_filter_and_detail(client: Client) -> None:
    everything = client.predict("", "すべて", api_name="/cases_search")
    assert everything["headers"] == ["事例", "名称", "別名", "準ずる法定事務", "確度", "時点"]
    assert sorted(row[0] for row in everything["data"]) == list(range(1, 36))
    found = client.predict("マル乳", "すべて", api_name="/cases_search")
    assert [row[0] for row in found["data"]] == [1]
    confirmed = client.predict("", "確認済み", api_name="/cases_search")
    assert all(row[4] == "確認済み" for row in confirmed["data"])
    detail = client.predict(1, api_name="/case_detail")
    for part in ("(1) 子どもの医療費助成", "準ずる法定事務", "児童福祉法", "別名・通称", "マル乳", "事務の例", "出典", "確度"):
        assert part in detail
    with pytest.raises(AppError):
        client.predict(99, api_name="/case_detail")


# -- 資料管理 -----------------------------------------------------------------------------------
def test_admin_status(client: Client) -> None:
    for endpoint in ("/admin_status", "/admin_open"):
        status, documents = client.predict(api_name=endpoint)
        assert "索引の状態" in status and "チャンク数" in status
        assert documents["headers"][0] == "タイトル"


def test_admin_ingest_reports_each_file_and_rebuilds(client: Client, running_app: RunningApp, tmp_path: Path) -> None:
    good = tmp_path / "さくら町独自給付の手引.md"
    good.write_text("# さくら町の独自給付\n\nさくらんぼ手当は、さくら町が独自に支給する手当です。\n", encoding="utf-8")
    broken = tmp_path / "壊れた資料.pdf"
    broken.write_bytes(b"%PDF-1.7 this is not really a pdf")
    message, results, status, documents, picker = client.predict(
        [handle_file(str(good)), handle_file(str(broken))], "", "guidance", "2025-04-01", "public", "", "確認済み", True,
        False, api_name="/admin_ingest",
    )
    assert picker is None, "the picker is emptied after 登録"
    rows = {row[0]: row for row in results["data"]}
    assert rows[good.name][1] == "追加" and rows[good.name][2] >= 1
    assert rows[broken.name][1] == "エラー" and rows[broken.name][3]
    assert "2 件のファイルを処理しました（エラー 1 件）" in message and "索引を差分で更新しました" in message
    assert "最新" in status
    listed = [row[0] for row in documents["data"]]  # other tests of the session may have added documents too
    assert good.stem in listed and broken.stem not in listed
    again = client.predict([handle_file(str(good))], "", "guidance", "2025/4/1", "public", "", "確認済み", False, False,
                           api_name="/admin_ingest")
    assert again[1]["data"][0][1] == "変更なし", "2025/4/1 is the same date as 2025-04-01"
    japanese = client.predict([handle_file(str(good))], "", "guidance", "令和7年4月1日", "public", "", "確認済み", False,
                              False, api_name="/admin_ingest")
    assert japanese[1]["data"][0][1] == "変更なし", "令和7年4月1日 is 2025-04-01 too"
    bad_date = client.predict([handle_file(str(good))], "", "guidance", "令和7年", "public", "", "確認済み", False, False,
                              api_name="/admin_ingest")
    assert bad_date[1]["data"][0][1] == "エラー" and "令和8年4月1日" in bad_date[1]["data"][0][3]
    with pytest.raises(AppError, match="ファイルを選んで"):
        client.predict([], "", "guidance", "", "public", "", "確認済み", False, False, api_name="/admin_ingest")
    with pytest.raises(AppError, match="タイトルは 1 つのファイル"):
        client.predict([handle_file(str(good)), handle_file(str(broken))], "題", "guidance", "", "public", "", "確認済み",
                       False, False, api_name="/admin_ingest")


def test_a_long_ingest_shows_progress_and_does_not_hold_up_the_chat(
    client: Client, running_app: RunningApp, tmp_path: Path
) -> None:
    big = tmp_path / "大きな資料.txt"
    paragraph = "さくら町の独自給付に関する規定の例文です。対象者、目的、給付の内容、照会する情報の種類を定めます。"
    big.write_text("\n\n".join(f"第{i}条 {paragraph * 3}" for i in range(6000)), encoding="utf-8")
    asker = Client(running_app.url, verbose=False)
    ingest = client.submit([handle_file(str(big))], "", "other", "2025-04-01", "public", "", "要確認", True, False,
                           api_name="/admin_ingest")
    deadline = time.monotonic() + 60
    while ingest.status().code.name not in {"PROCESSING", "PROGRESS"} and time.monotonic() < deadline:
        assert not ingest.done(), "the ingest finished before the chat could be tried"
        time.sleep(0.02)
    started = time.monotonic()
    answer = asker.predict("api-chat-during-ingest", QUESTION, [], api_name="/chat")
    chat_seconds = time.monotonic() - started
    chat_finished_first = not ingest.done()
    progress_notes: set[str] = set()
    while not ingest.done() and time.monotonic() < deadline + 240:
        for unit in ingest.status().progress_data or []:
            progress_notes.add(str(unit.desc))
        time.sleep(0.1)
    message, results, status, _, _ = ingest.result(timeout=300)
    assert answer[5]["citations"] and results["data"][0][1] == "追加"
    assert "索引を差分で更新しました" in message and "最新" in status
    assert chat_finished_first, f"the chat answer ({chat_seconds:.1f} s) waited for the ingest"
    assert any(note.startswith("索引:") for note in progress_notes), progress_notes


def test_rebuild(client: Client) -> None:
    message, status, documents = client.predict(api_name="/admin_rebuild")
    assert "索引を再構築しました" in message and "最新" in status and documents["data"]


def test_with_login_off_a_request_through_a_proxy_does_not_administer(running_app: RunningApp) -> None:
    relayed = Client(running_app.url, headers={"X-Forwarded-For": "127.0.0.1"}, verbose=False)
    assert "中継サーバー経由" in relayed.predict(api_name="/session_start")[0]
    for endpoint in ("/admin_status", "/admin_rebuild"):
        with pytest.raises(AppError, match="中継サーバー経由では使えません"):
            relayed.predict(api_name=endpoint)
    with pytest.raises(AppError, match="中継サーバー経由では使えません"):
        relayed.predict("", api_name="/admin_audit_export")


def test_answers_are_audited_masked_and_exported_as_csv(client: Client) -> None:
    import csv

    session = "api-audit"
    question = "担当の山田です。電話は 03-1234-5678、メールは yamada@example.jp です。" + QUESTION
    result = client.predict(session, question, [], api_name="/chat")[-1]
    path = Path(client.predict("", api_name="/admin_audit_export"))
    raw = path.read_text(encoding="utf-8-sig")
    assert "03-1234-5678" not in raw and "yamada@example.jp" not in raw
    rows = list(csv.DictReader(raw.splitlines()))
    (row,) = [r for r in rows if r["セッション"] == session]
    assert row["操作"] == "相談チャット" and row["回答ID"] == f"{session}#1" and row["利用者"] == "ログインなし"
    assert row["利用元"] == "このコンピューター" and row["アドレス"] == "127.0.0.1"
    assert row["出典"].split() == list(dict.fromkeys(c["source_id"] for c in result["citations"]))
    assert "住民税" in row["質問・入力（マスク済み）"] and "マスク済" in row["質問・入力（マスク済み）"]
    later = Path(client.predict("2999-01-01", api_name="/admin_audit_export"))
    assert len(later.read_text(encoding="utf-8-sig").splitlines()) == 1, "only the header is after that date"
    with pytest.raises(AppError, match="YYYY-MM-DD"):
        client.predict("昨日", api_name="/admin_audit_export")


def test_uploads_and_downloads_stay_under_assistant_home(client: Client, running_app: RunningApp) -> None:
    import httpx

    uploaded = httpx.post(
        f"{running_app.url}gradio_api/upload", files={"files": ("個人情報を含む資料.txt", "山田太郎 03-1234-5678".encode())},
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    for path in uploaded.json():
        assert Path(path).is_relative_to(running_app.home), f"the upload went to {path}"
    exported = Path(client.predict("回答案の本文です。", "テキスト (.txt)", api_name="/reply_export"))
    assert exported.read_text(encoding="utf-8").startswith("回答案の本文です。"), "the download works"
    assert not (running_app.tmpdir / "gradio").exists(), "Gradio kept copies in the system temp folder"
    kept = [p for p in running_app.home.rglob("*") if p.is_file() and "gradio" in p.relative_to(running_app.home).parts[0]]
    assert kept, "Gradio's copies are under ASSISTANT_HOME"


def test_the_app_stays_on_this_machine(running_app: RunningApp) -> None:
    assert running_app.outside_connections() == []
