"""知識の管理 (administrators): the facts and what still needs confirming, corrections with their source, the
history with reverts and a before / after view, the overlay for download, and official case tables imported
with a preview first. The same operations as `assistant knowledge`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from assistant.audit import ACCESS_DENIED, KNOWLEDGE_EXPORT
from assistant.curation.curator import Curator, CurationError, PlannedChange, SetRequest, brief
from assistant.curation.store import HistoryRow
from assistant.curation.tables import ImportPlan, TableImporter, field_label
from assistant.index.store import build_index
from assistant.ingest.docstore import DocumentStore
from assistant.knowledge.models import CONFIRMED, UNCONFIRMED
from assistant.knowledge.overlay import COLLECTIONS, is_list_field, parse_path, shown
from assistant.ui.access import AccessDenied, Viewer
from assistant.ui.common import ADMIN_GROUP, ADMIN_LIMIT, current_viewer, friendly_errors
from assistant.ui.context import UIContext
from assistant.ui.render import confidence_badge, esc, markdown_text

DENIED = "知識の管理には管理者の権限が必要です"
ALL_KINDS = "すべて"
KEEP_CONFIDENCE = "変えない"
FACT_HEADERS = ["項目の指定", "対象", "項目", "値", "確度", "時点"]
HISTORY_HEADERS = ["番号", "日時", "利用者", "操作", "項目の指定", "変更前", "変更後", "確度", "出典", "理由", "状態"]
TABLE_TYPES = [".xlsx", ".csv", ".pdf"]
VALUE_CHARS = 80


def _curator(context: UIContext) -> Curator:
    return context._once("curator", lambda: Curator(context.settings, audit=context.audit))


def _require_admin(context: UIContext, viewer: Viewer, what: str) -> None:
    if not viewer.can_administer:
        context.audit.record(ACCESS_DENIED, viewer.actor(), detail=f"知識の管理: {what}")
        raise AccessDenied(DENIED if viewer.auth_enabled else DENIED + "（ログインなしのときは、このコンピューターからだけ）")


def _kind_choices() -> list[tuple[str, str]]:
    return [(ALL_KINDS, ALL_KINDS)] + [(c.label, c.name) for c in COLLECTIONS.values()]


def fact_table(curator: Curator, kind: str, unconfirmed_only: bool, query: str) -> pd.DataFrame:
    facts = curator.facts(unconfirmed_only=bool(unconfirmed_only), collection=None if kind in (None, "", ALL_KINDS) else kind,
                          query=query or "")
    rows = [[f.path, f.entry_label, f.ref.field_label, brief(f.value, VALUE_CHARS), f.confidence, f.as_of] for f in facts]
    return pd.DataFrame(rows, columns=FACT_HEADERS)


def history_table(curator: Curator, path: str | None = None) -> pd.DataFrame:
    rows = []
    for row in curator.log(path or None):
        confidence = f"{row['confidence_before'] or '未設定'}→{row['confidence']}" if row["confidence"] else ""
        rows.append([row["id"], row["at"][:19].replace("T", " "), row["user"] or "（名前なし）", "取り消し" if row["action"] == "revert" else "補正",
                     row["path"], brief(row["before"]), brief(row["after"]), confidence, row["source"] or "",
                     row["reason"], row["status"]])
    return pd.DataFrame(rows, columns=HISTORY_HEADERS)


def fact_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"### {markdown_text(data['entry'])} / {markdown_text(data['field'])}",
        f"`{data['path']}`　{confidence_badge(data['confidence'])}　時点 {markdown_text(data['as_of'])}",
        "",
    ]
    value = data["value"]
    if isinstance(value, list) and value:
        lines += [f"- {markdown_text(v)}" for v in value]
    else:
        lines.append(markdown_text(shown(value)))
    lines += ["", "**出典**"]
    for source in data["sources"]:
        date = source.get("as_of") or "時点不明"
        mark = "（補正で登録）" if source.get("curated") else ""
        lines.append(f"- {markdown_text(source.get('title') or source['id'])}（{markdown_text(date)}）{mark}")
    history = data["history"]
    lines += ["", f"**履歴**（{len(history)} 件）" if history else "**履歴**: 補正はまだありません"]
    for row in history:
        who = row["user"] or "名前なし"
        lines.append(f"- #{row['id']} {markdown_text(row['at'])} {markdown_text(who)}: {markdown_text(row['status'])}"
                     f"（理由: {markdown_text(row['reason'])}）")
    return "\n".join(lines)


def diff_html(rows: list[tuple[str, str, str]], title: str = "") -> str:
    if not rows:
        return '<p class="sources-empty">変更はありません。</p>'
    body = "".join(
        f"<tr><th>{esc(what)}</th><td class='diff-before' style='background:#fde8e8;color:#222'>{esc(before)}</td>"
        f"<td class='diff-after' style='background:#e3f6e3;color:#222'>{esc(after)}</td></tr>"
        for what, before, after in rows
    )
    head = f"<p><b>{esc(title)}</b></p>" if title else ""
    return (f"{head}<table class='checklist-items knowledge-diff'><tr><th>項目</th><th>変更前</th><th>変更後</th></tr>"
            f"{body}</table>")


def revert_diff_rows(target: HistoryRow) -> list[tuple[str, str, str]]:
    """What taking a change back changes: its value, confidence and source, the other way round."""
    rows = []
    if target.after != target.before:
        rows.append(("値", shown(target.after), shown(target.before)))
    if target.confidence:
        rows.append(("確度", target.confidence, target.confidence_before or "未設定（項目全体の確度）"))
    if target.source:
        rows.append(("出典", target.source, "（この出典を外す）"))
    return rows


def change_diff_html(changes: list[PlannedChange]) -> str:
    if not changes:
        return '<p class="sources-empty">変更はありません。</p>'
    return "".join(diff_html(c.diff(), f"{c.before.entry_label} / {c.ref.field_label}") for c in changes)


def import_markdown(plan: ImportPlan) -> str:
    lines = [f"**{markdown_text(plan.file_name)}**: {len(plan.rows)} 行、変更 {len(plan.changes)} 件（事例 {len(plan.cases)} 件）"]
    if plan.columns:
        lines.append("読んだ列: " + "、".join(f"{markdown_text(h)}→{markdown_text(field_label(f))}" for h, f in plan.columns.items()))
    if plan.unread_columns:
        lines.append("読まなかった列: " + "、".join(markdown_text(h) for h in plan.unread_columns))
    if plan.errors:
        lines.append("**表に誤りがあるため、取り込めません（何も変更していません）:**")
        lines += [f"- {markdown_text(e)}" for e in plan.errors]
    warnings = [f"{r.where}: {w}" for r in plan.rows for w in r.warnings]
    if warnings:
        lines.append("**注意:**")
        lines += [f"- {markdown_text(w)}" for w in warnings]
    if plan.ok and plan.changes:
        lines.append("内容を確かめて「取り込む」を押すと、補正として記録されます。")
    elif plan.ok:
        lines.append("登録と違うところはありません。")
    return "  \n".join(lines)


def _request(path: str, value: str, clear: bool, confidence: str, source: str, page: str, as_of: str,
             reason: str) -> SetRequest:
    ref = parse_path(path)
    text = (value or "").strip()
    return SetRequest(
        path=ref.path, value=text or None, clear=bool(clear),
        confidence=None if confidence in (None, "", KEEP_CONFIDENCE) else confidence,
        source=(source or "").strip() or None, page=(page or "").strip() or None, as_of=(as_of or "").strip() or None,
        reason=reason or "",
    )


def _reindex(context: UIContext, progress: Any) -> str:
    progress(0.5, desc="索引を再構築しています")
    report = build_index(context.settings, context.assistant.knowledge)
    progress(0.9, desc="新しい索引を読み込んでいます")
    context.assistant.reload_index()
    return f"索引を再構築しました（{report.chunks} チャンク、{report.seconds:.1f} 秒）。回答に反映されています。"


def _document_choices(context: UIContext) -> list[str]:
    records = DocumentStore(context.settings.documents_dir, context.settings.corpus_dir).records()
    return sorted({str(r.get("file_name") or r.get("title")) for r in records if r.get("official")})


def build_knowledge_page(context: UIContext, tab: gr.Tab) -> None:
    gr.Markdown(
        "事例の準ずる法定事務・照会する情報・情報提供者・別名、Q&A の回答、手続の事実を、公式の資料を根拠に確認・修正します。"
        "補正は出荷時の知識ベース（corpus）に重ねて適用され、誰が・いつ・何を・なぜ変えたかが履歴と監査ログに残ります。"
        "取り消しもできます。確認済みにするには、根拠の資料（登録した公式資料とページ、又は引用元）と時点が必要です。"
    )
    with gr.Row():
        kind = gr.Dropdown(_kind_choices(), value=ALL_KINDS, label="種類", scale=1, elem_id="knowledge-kind")
        unconfirmed = gr.Checkbox(value=True, label="要確認のものだけ（確認が必要なもの）", scale=1, elem_id="knowledge-unconfirmed")
        query = gr.Textbox(label="絞り込み（空白区切りで AND）", placeholder="例: 予防接種 準ずる", scale=2, elem_id="knowledge-query")
    facts = gr.Dataframe(headers=FACT_HEADERS, value=pd.DataFrame([], columns=FACT_HEADERS), interactive=False, wrap=True,
                         max_height=360, column_widths=["20%", "24%", "14%", "28%", "7%", "7%"],
                         label="事実の一覧（行を選ぶと下に表示）", elem_id="knowledge-facts")
    with gr.Row():
        with gr.Column(scale=3):
            path = gr.Textbox(label="項目の指定", placeholder="例: cases.5.analogous_statutory_affair", elem_id="knowledge-path")
            detail = gr.Markdown("一覧の行を選ぶか、項目の指定を入力してください。", elem_id="knowledge-detail")
        with gr.Column(scale=3):
            with gr.Group():
                value = gr.Textbox(label="新しい値（空欄のままなら値は変えず、確度と出典だけ）", lines=3,
                                   info="一覧の項目は一行に一つ", elem_id="knowledge-value")
                clear = gr.Checkbox(value=False, label="値を空（不明）にする", elem_id="knowledge-clear")
                confidence = gr.Radio([KEEP_CONFIDENCE, CONFIRMED, UNCONFIRMED], value=KEEP_CONFIDENCE, label="確度",
                                      elem_id="knowledge-confidence")
                with gr.Row():
                    source = gr.Dropdown(choices=_document_choices(context), value=None, allow_custom_value=True,
                                         label="出典（登録した公式資料、sources の id、又は引用元）", scale=3,
                                         elem_id="knowledge-source")
                    page = gr.Textbox(label="ページ・節", placeholder="例: p.3", scale=1, elem_id="knowledge-page")
                    as_of = gr.Textbox(label="出典の時点（YYYY-MM-DD）", placeholder="例: 2026-04-01", scale=1,
                                       elem_id="knowledge-as-of")
                reason = gr.Textbox(label="理由（履歴と監査ログに残ります）", elem_id="knowledge-reason")
                reindex = gr.Checkbox(value=True, label="保存後に索引を再構築する（回答に反映）", elem_id="knowledge-reindex")
                with gr.Row():
                    preview_button = gr.Button("差分を確認", elem_id="knowledge-preview")
                    save_button = gr.Button("保存する", variant="primary", elem_id="knowledge-save")
    message = gr.Markdown(elem_id="knowledge-message")
    diff = gr.HTML(label="変更前と変更後", elem_id="knowledge-diff")
    with gr.Accordion("補正の履歴と取り消し", open=True, elem_id="knowledge-history-box"):
        history = gr.Dataframe(headers=HISTORY_HEADERS, value=pd.DataFrame([], columns=HISTORY_HEADERS), interactive=False,
                               wrap=True, max_height=300,
                               column_widths=["5%", "11%", "7%", "6%", "13%", "12%", "12%", "8%", "10%", "9%", "7%"],
                               label="補正の履歴（新しいものが下。行を選ぶと変更前と変更後を表示）", elem_id="knowledge-history")
        with gr.Row():
            revert_ids = gr.Textbox(label="取り消す補正の番号（空白区切り）", scale=1, elem_id="knowledge-revert-ids")
            revert_reason = gr.Textbox(label="取り消す理由", scale=2, elem_id="knowledge-revert-reason")
            revert_button = gr.Button("取り消す", variant="stop", scale=1, elem_id="knowledge-revert")
        with gr.Row():
            export_button = gr.Button("補正を書き出す（YAML）", elem_id="knowledge-export")
            export_file = gr.File(label="補正（corpus に重ねる差分）", interactive=False, elem_id="knowledge-export-file")
    with gr.Accordion("公式の事例の表を取り込む（Excel / CSV / PDF）", open=False, elem_id="knowledge-import-box"):
        gr.Markdown("事例番号・事務の名称・準ずる法定事務・情報照会者・情報提供者・特定個人情報などの列を読み、登録との違いを"
                    "プレビューします。「取り込む」を押すまで何も変わりません。誤りのある行があれば、表全体を取り込みません。")
        with gr.Row():
            table_file = gr.File(label="事例の表", file_types=TABLE_TYPES, type="filepath", elem_id="knowledge-table")
            with gr.Column():
                mapping = gr.Textbox(label="列の対応（一行に「列名=項目」。既定の見出しで読めないとき）", lines=2,
                                     placeholder="例: 準拠法定事務=準ずる法定事務", elem_id="knowledge-map")
                table_as_of = gr.Textbox(label="表の時点（YYYY-MM-DD）", elem_id="knowledge-table-as-of")
                table_title = gr.Textbox(label="表の題名（省略するとファイル名）", elem_id="knowledge-table-title")
        with gr.Row():
            import_preview_button = gr.Button("プレビュー", elem_id="knowledge-import-preview")
            import_apply_button = gr.Button("取り込む", variant="primary", elem_id="knowledge-import-apply")
        import_message = gr.Markdown(elem_id="knowledge-import-message")
        import_diff = gr.HTML(elem_id="knowledge-import-diff")

    admin_options: dict[str, Any] = {"concurrency_id": ADMIN_GROUP, "concurrency_limit": ADMIN_LIMIT}

    def guarded(request: gr.Request, what: str) -> Viewer:
        viewer = current_viewer(context, request)
        with friendly_errors():
            _require_admin(context, viewer, what)
        return viewer

    def list_facts(kind_value: str, only_unconfirmed: bool, text: str, request: gr.Request) -> pd.DataFrame:
        guarded(request, "一覧")
        with friendly_errors():
            return fact_table(_curator(context), kind_value, only_unconfirmed, text)

    def open_page(kind_value: str, only_unconfirmed: bool, text: str, request: gr.Request) -> tuple[Any, ...]:
        guarded(request, "表示")
        with friendly_errors():
            curator = _curator(context)
            problems = curator.problems()
            note = ""
            if problems:
                note = (f"**出荷時の知識ベースに適用できない補正が {len(problems)} 件あります**（履歴の「状態」を確かめて、"
                        "補正し直すか取り消してください）。")
            return (fact_table(curator, kind_value, only_unconfirmed, text), history_table(curator), note,
                    gr.Dropdown(choices=_document_choices(context)))

    def show(path_text: str, request: gr.Request) -> tuple[str, str]:
        guarded(request, "表示")
        if not (path_text or "").strip():
            return "一覧の行を選ぶか、項目の指定を入力してください。", ""
        with friendly_errors():
            curator = _curator(context)
            data = curator.show(path_text)
            ref = parse_path(path_text)
            current = data["value"]
            prefill = "\n".join(current) if is_list_field(ref) and current else ("" if current is None else str(current))
            return fact_markdown(data), prefill

    def select_fact(data: gr.SelectData) -> Any:
        row = data.row_value if isinstance(data.row_value, list) else None
        return row[0] if row else gr.skip()

    def preview(path_text: str, value_text: str, clear_value: bool, level: str, source_text: str, page_text: str,
                date: str, why: str, request: gr.Request) -> tuple[str, str]:
        guarded(request, "差分の確認")
        with friendly_errors():
            request_ = _request(path_text, _unchanged_is_empty(context, path_text, value_text), clear_value, level,
                                source_text, page_text, date, why or "（確認中）")
            planned = _curator(context).plan(request_)
            return "保存すると次のように変わります。", diff_html(planned.diff(), f"{planned.before.entry_label} / {planned.ref.field_label}")

    def save(path_text: str, value_text: str, clear_value: bool, level: str, source_text: str, page_text: str, date: str,
             why: str, and_reindex: bool, kind_value: str, only_unconfirmed: bool, text: str, request: gr.Request,
             progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        viewer = guarded(request, "補正")
        with friendly_errors():
            curator = _curator(context)
            planned, row = curator.set(
                _request(path_text, _unchanged_is_empty(context, path_text, value_text), clear_value, level, source_text,
                         page_text, date, why), viewer.actor())
            lines = [f"補正 #{row.id} を記録しました。"]
            lines.append(_reindex(context, progress) if and_reindex else
                         "索引はまだ再構築していません。資料管理の「索引を再構築」で回答に反映されます。")
            data = curator.show(planned.ref.path)
            return ("  \n".join(lines), diff_html(planned.diff(), f"{planned.before.entry_label} / {planned.ref.field_label}"),
                    fact_markdown(data), fact_table(curator, kind_value, only_unconfirmed, text), history_table(curator))

    def revert(ids_text: str, why: str, and_reindex: bool, path_text: str, kind_value: str, only_unconfirmed: bool,
               text: str, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        viewer = guarded(request, "取り消し")
        with friendly_errors():
            try:
                ids = [int(part.lstrip("#")) for part in (ids_text or "").replace("、", " ").replace(",", " ").split()]
            except ValueError as exc:
                raise CurationError("取り消す補正の番号は数字で指定してください（例: 3 5）") from exc
            curator = _curator(context)
            rows = curator.revert(ids, why or "", viewer.actor())
            lines = ["取り消しました: " + "、".join(f"#{r.reverts}" for r in rows)]
            if and_reindex:
                lines.append(_reindex(context, progress))
            targets = curator.store.history(ids=[r.reverts for r in rows if r.reverts is not None])
            rows_html = "".join(diff_html(revert_diff_rows(t), f"#{t.id} {t.path}") for t in targets)
            shown_detail = fact_markdown(curator.show(path_text)) if (path_text or "").strip() else gr.skip()
            return ("  \n".join(lines), rows_html, shown_detail, fact_table(curator, kind_value, only_unconfirmed, text),
                    history_table(curator))

    def select_history(data: gr.SelectData) -> str:
        row = data.row_value if isinstance(data.row_value, list) else None
        if not row:
            return gr.skip()
        return diff_html([("値", str(row[5]), str(row[6])), ("確度", "", str(row[7]))], f"#{row[0]} {row[4]}")

    def export(request: gr.Request) -> str:
        viewer = guarded(request, "書き出し")
        with friendly_errors():
            target = context.export_path("知識ベースの補正", "yaml")
            _, count = _curator(context).export(target)
        context.audit.record(KNOWLEDGE_EXPORT, viewer.actor(), detail=f"補正 {count} 件を書き出し")
        return str(target)

    def plan_table(upload: str | None, mapping_text: str, date: str, title: str) -> tuple[TableImporter, ImportPlan]:
        if not upload:
            raise CurationError("取り込む表のファイルを選んでください")
        importer = TableImporter(_curator(context))
        items = [line.strip() for line in (mapping_text or "").splitlines() if line.strip()]
        plan = importer.plan(Path(upload), mapping=items, as_of=(date or "").strip() or None,
                             title=(title or "").strip() or None, name=Path(upload).name)
        return importer, plan

    def import_preview(upload: str | None, mapping_text: str, date: str, title: str, request: gr.Request) -> tuple[str, str]:
        guarded(request, "表のプレビュー")
        with friendly_errors():
            _, plan = plan_table(upload, mapping_text, date, title)
            return import_markdown(plan), change_diff_html(plan.changes)

    def import_apply(upload: str | None, mapping_text: str, date: str, title: str, and_reindex: bool, kind_value: str,
                     only_unconfirmed: bool, text: str, request: gr.Request,
                     progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        viewer = guarded(request, "表の取り込み")
        with friendly_errors():
            importer, plan = plan_table(upload, mapping_text, date, title)
            if not plan.ok:
                return import_markdown(plan), change_diff_html([]), gr.skip(), gr.skip()
            rows = importer.apply(plan, viewer.actor())
            lines = [f"{len(rows)} 件の補正として取り込みました（事例 {len(plan.cases)} 件、出典: {plan.source.id if plan.source else ''}）。"]
            if rows and and_reindex:
                lines.append(_reindex(context, progress))
            curator = _curator(context)
            return ("  \n".join(lines), change_diff_html(plan.changes), fact_table(curator, kind_value, only_unconfirmed, text),
                    history_table(curator))

    filters = [kind, unconfirmed, query]
    form = [path, value, clear, confidence, source, page, as_of, reason]
    gr.on(triggers=[kind.change, unconfirmed.change, query.submit], fn=list_facts, inputs=filters, outputs=[facts],
          api_name="knowledge_facts", trigger_mode="always_last", show_progress="hidden")
    tab.select(open_page, inputs=filters, outputs=[facts, history, message, source], api_name="knowledge_open",
               show_progress="hidden")
    facts.select(select_fact, outputs=[path], api_name="knowledge_select", api_visibility="undocumented")
    gr.on(triggers=[path.submit, path.change], fn=show, inputs=[path], outputs=[detail, value], api_name="knowledge_show",
          trigger_mode="always_last", show_progress="hidden")
    preview_button.click(preview, inputs=form, outputs=[message, diff], api_name="knowledge_preview")
    save_button.click(save, inputs=[*form, reindex, *filters], outputs=[message, diff, detail, facts, history],
                      api_name="knowledge_set", **admin_options)
    revert_button.click(revert, inputs=[revert_ids, revert_reason, reindex, path, *filters],
                        outputs=[message, diff, detail, facts, history], api_name="knowledge_revert", **admin_options)
    history.select(select_history, outputs=[diff], api_name="knowledge_history_select", api_visibility="undocumented")
    export_button.click(export, outputs=[export_file], api_name="knowledge_export")
    import_preview_button.click(import_preview, inputs=[table_file, mapping, table_as_of, table_title],
                                outputs=[import_message, import_diff], api_name="knowledge_import_preview")
    import_apply_button.click(import_apply, inputs=[table_file, mapping, table_as_of, table_title, reindex, *filters],
                              outputs=[import_message, import_diff, facts, history], api_name="knowledge_import",
                              **admin_options)


def _unchanged_is_empty(context: UIContext, path_text: str, value_text: str) -> str:
    """The value box starts filled with the current value: sent back unchanged, it means 'keep the value'."""
    text = (value_text or "").strip()
    if not text:
        return ""
    try:
        ref = parse_path(path_text)
        data = _curator(context).show(ref.path)
    except (CurationError, ValueError):
        return text
    current = data["value"]
    same = "\n".join(current) if isinstance(current, list) else ("" if current is None else str(current))
    return "" if text == same.strip() else text

