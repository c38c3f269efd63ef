"""資料管理 (administrators): upload official documents, watch ingest progress, rebuild the index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from assistant.audit import AUDIT_EXPORT, INGEST, REBUILD, parse_since
from assistant.index.store import build_index, index_status, update_index
from assistant.index.locks import documents_lock
from assistant.ingest.docstore import (
    CONFIDENCES,
    SCOPE_MUNICIPALITY,
    SCOPE_PUBLIC,
    UNCONFIRMED,
    DocumentStore,
)
from assistant.ingest.pipeline import IngestOptions, IngestReport, Upload, ingest_documents
from assistant.ui.common import ADMIN_GROUP, ADMIN_LIMIT, current_viewer, friendly_errors, user_error
from assistant.ui.context import UIContext
from assistant.ui.render import (
    CONFIRMED,
    DOCUMENT_HEADERS,
    INGEST_HEADERS,
    KIND_LABELS,
    SCOPE_MUNICIPALITY_LABEL,
    SCOPE_PUBLIC_LABEL,
    document_confidence,
    document_rows,
    document_scope,
    index_status_markdown,
    ingest_rows,
    markdown_text,
)

ACCEPTED_TYPES = [".pdf", ".docx", ".xlsx", ".csv", ".html", ".htm", ".md", ".txt"]
BUILD_STAGES = 6  # build_index reports five stages; the sixth is loading the new index
SCOPE_CHOICES = [(SCOPE_PUBLIC_LABEL, SCOPE_PUBLIC), (SCOPE_MUNICIPALITY_LABEL, SCOPE_MUNICIPALITY)]
# The confidence an uploader starts from: official material is confirmed, a municipality's own is to be checked.
DEFAULT_CONFIDENCE = {SCOPE_PUBLIC: CONFIRMED, SCOPE_MUNICIPALITY: UNCONFIRMED}

Progress = Callable[..., Any]


def _store(context: UIContext) -> DocumentStore:
    return DocumentStore.for_settings(context.settings)


def _status(context: UIContext) -> tuple[str, pd.DataFrame]:
    report = context.assistant.index_report()
    documents = pd.DataFrame(document_rows(_store(context).records()), columns=DOCUMENT_HEADERS)
    text = index_status_markdown(report["disk"])
    served = report["served"]
    if served:
        text += f"  \n**回答に使用中の索引:** {served['build_id']}（{served['chunks']} チャンク）"
    return text, documents


def rebuild(context: UIContext, progress: Progress, offset: float = 0.0, span: float = 1.0) -> str:
    """Build a new index, publish it and switch the running assistant over to it."""
    calls = [0]

    def say(message: str) -> None:
        progress(offset + span * calls[0] / BUILD_STAGES, desc=f"索引: {message}")
        calls[0] += 1

    report = build_index(context.settings, context.assistant.knowledge, progress=say)
    progress(offset + span * (BUILD_STAGES - 1) / BUILD_STAGES, desc="新しい索引を読み込んでいます")
    context.assistant.reload_index()
    context.assistant.warm_up()
    return f"索引を再構築しました（{report.chunks} チャンク、{report.seconds:.1f} 秒）"


def _readonly_table(headers: list[str], label: str, elem_id: str) -> gr.Dataframe:
    return gr.Dataframe(
        headers=headers,
        value=pd.DataFrame([], columns=headers),
        interactive=False,
        wrap=True,
        label=label,
        elem_id=elem_id,
    )


def _document_line(record: dict[str, Any]) -> str:
    """One registered document as the removal list names it (Markdown; the document's words stay text)."""
    name = markdown_text(record.get("title") or record.get("file_name") or "")
    facts = "・".join(markdown_text(x) for x in (document_scope(record), document_confidence(record), record.get("as_of")) if x)
    return f"**{name}**　{facts}　（{markdown_text(record.get('file_name') or '')}）"


def build_admin_page(context: UIContext, tab: gr.Tab) -> None:
    gr.Markdown(
        "資料（手引、Q&A、事例、法令、団体の要綱など）を登録すると、相談の回答に使われます。"
        "範囲は「公式資料」（すべての利用者への回答に使う）か「団体の資料」（その団体の利用者への回答にだけ使う）から選び、"
        "確度は公式資料なら「確認済み」、それ以外は「要確認」が既定です。個人情報は登録時にマスクされ、"
        "元のファイルは「保管する」を選んだときだけ保存されます。"
    )
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(
                label="資料ファイル（PDF / Word / Excel / CSV / HTML / Markdown / テキスト）",
                file_count="multiple",
                file_types=ACCEPTED_TYPES,
                type="filepath",
                elem_id="admin-files",
            )
            title = gr.Textbox(
                label="タイトル（空欄ならファイル名。複数のファイルには使いません）",
                placeholder="例: さくら市 子ども医療費助成事務実施要綱", elem_id="admin-title",
            )
            with gr.Row():
                kind = gr.Dropdown(
                    [(label, value) for value, label in KIND_LABELS.items()],
                    value="guidance",
                    label="資料の種別",
                    elem_id="admin-kind",
                )
                as_of = gr.Textbox(
                    label="時点（2026-04-01 / 2026/4/1 / 令和8年4月1日）", placeholder="例: 令和8年4月1日",
                    elem_id="admin-as-of",
                )
            with gr.Row():
                scope = gr.Radio(SCOPE_CHOICES, value=SCOPE_PUBLIC, label="範囲", elem_id="admin-scope")
                municipality = gr.Textbox(
                    label="団体名（団体の資料のとき）", placeholder="例: さくら市", elem_id="admin-municipality",
                )
                confidence = gr.Radio(list(CONFIDENCES), value=CONFIRMED, label="確度", elem_id="admin-confidence")
            with gr.Row():
                rebuild_after = gr.Checkbox(value=True, label="登録・削除の後に索引を再構築する", elem_id="admin-rebuild-after")
                keep_original = gr.Checkbox(value=False, label="元のファイルを保管する", elem_id="admin-keep-original")
            ingest_button = gr.Button("登録する", variant="primary", elem_id="admin-ingest")
            message = gr.Markdown(label="処理結果", show_label=False, elem_id="admin-message")
            results = _readonly_table(INGEST_HEADERS, "ファイルごとの結果", "admin-results")
        with gr.Column(scale=2):
            status = gr.Markdown("索引の状態を読み込んでいます…", label="索引の状態", show_label=False, elem_id="admin-status")
            with gr.Row():
                refresh = gr.Button("状態を更新", elem_id="admin-refresh")
                rebuild_button = gr.Button("索引を再構築", variant="stop", elem_id="admin-rebuild")
    documents = _readonly_table(DOCUMENT_HEADERS, "登録済みの文書", "admin-documents")
    records = gr.State([])
    with gr.Accordion("登録済みの文書を削除する", open=False, elem_id="admin-remove"):

        @gr.render(inputs=[records])
        def removal_list(listed: list[dict[str, Any]]) -> None:
            if not listed:
                gr.Markdown("登録済みの文書はありません。")
                return
            for record in listed:
                doc_id = str(record.get("doc_id", ""))
                with gr.Row(elem_classes=["admin-document"]):
                    gr.Markdown(_document_line(record), elem_classes=["admin-document-name"])
                    remove = gr.Button("削除", variant="stop", size="sm", scale=0, min_width=80,
                                       elem_id=f"admin-remove-{doc_id}")
                remove.click(
                    remover(doc_id),
                    inputs=[rebuild_after],
                    outputs=[message, results, status, documents, records],
                    api_visibility="private",
                    **admin_options,
                )

    with gr.Accordion("監査ログ（ヘルプデスク向けの CSV）", open=False, elem_id="admin-audit"):
        gr.Markdown(
            "誰が・いつ・何を尋ね（個人情報はマスク済み）・どの出典で回答したか、ログインの失敗とロックを記録しています。"
            f"記録は {context.settings.audit_retention_days or '無期限'}{' 日' if context.settings.audit_retention_days else ''}"
            "保存します（設定 audit_retention_days）。"
        )
        with gr.Row():
            audit_since = gr.Textbox(label="この日以降（YYYY-MM-DD、空欄はすべて）", scale=2, elem_id="admin-audit-since")
            audit_button = gr.Button("監査ログ（CSV）を作成", scale=1, elem_id="admin-audit-export")
        audit_file = gr.File(label="監査ログ（クリックでダウンロード）", interactive=False, elem_id="admin-audit-file")

    admin_options: dict[str, Any] = {"concurrency_id": ADMIN_GROUP, "concurrency_limit": ADMIN_LIMIT}

    def listing() -> tuple[str, pd.DataFrame, list[dict[str, Any]]]:
        text, table = _status(context)
        listed = [{k: r.get(k) for k in ("doc_id", "title", "file_name", "scope", "municipality", "confidence",
                                          "official", "as_of")} for r in _store(context).records()]
        return text, table, listed

    def show_status(request: gr.Request) -> tuple[str, pd.DataFrame, list[dict[str, Any]]]:
        with friendly_errors():
            current_viewer(context, request).require_admin()
        return listing()

    def follow_scope(chosen: str) -> gr.Radio:
        return gr.Radio(value=DEFAULT_CONFIDENCE.get(chosen, UNCONFIRMED))

    scope.input(follow_scope, inputs=[scope], outputs=[confidence], api_visibility="private", show_progress="hidden")

    def ingest(
        uploads: list[str] | None,
        title_text: str,
        kind_value: str,
        as_of_text: str,
        scope_value: str,
        municipality_text: str,
        confidence_value: str,
        and_rebuild: bool,
        keep: bool,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        viewer = current_viewer(context, request)
        with friendly_errors():
            viewer.require_admin()
        paths = [Path(p) for p in (uploads or [])]
        if not paths:
            raise user_error("登録するファイルを選んでください")
        if kind_value not in KIND_LABELS:
            raise user_error(f"種別 {kind_value!r} は使えません（{', '.join(KIND_LABELS)}）")
        if scope_value not in dict((v, k) for k, v in SCOPE_CHOICES):
            raise user_error(f"範囲は {' / '.join(label for label, _ in SCOPE_CHOICES)} から選んでください")
        if confidence_value not in CONFIDENCES:
            raise user_error(f"確度は {' / '.join(CONFIDENCES)} から選んでください")
        named = (title_text or "").strip() or None
        if named and len(paths) > 1:
            raise user_error("タイトルは 1 つのファイルを登録するときだけ指定できます（複数のときは空欄にしてください）")
        options = IngestOptions(
            kind=kind_value, as_of=(as_of_text or "").strip() or None, title=named,
            official=scope_value == SCOPE_PUBLIC, confidence=confidence_value, scope=scope_value,
            municipality=(municipality_text or "").strip() or None, keep_original=bool(keep),
        )
        # The same file name is the same document; nothing of the upload is kept unless asked for.
        uploads = [Upload(path, origin=context.uploads_dir / path.name, label=path.name) for path in paths]
        report = ingest_documents(
            context.settings, uploads, options,
            update_index=bool(and_rebuild), knowledge=context.assistant.knowledge,
            progress=lambda event: progress(event.fraction, desc=("索引: " if event.stage == "index" else "") + event.message),
        )
        outcomes = report.results
        lines = [f"{len(paths)} 件のファイルを処理しました（エラー {report.errors} 件）。"]
        lines += _index_lines(context, report)
        context.audit.record(
            INGEST, viewer.actor(),
            detail="; ".join(f"{r.path}: {r.status}" + (f"（{r.message}）" if r.status == "error" else "") for r in outcomes),
        )
        table = pd.DataFrame(ingest_rows(r.to_dict() for r in outcomes), columns=INGEST_HEADERS)
        # The picker is emptied: the files are done, and the next 登録 does not process them again.
        return ("  \n".join(lines), table, *listing(), None)

    def remove_document(doc_id: str, and_rebuild: bool, request: gr.Request, progress: gr.Progress) -> tuple[Any, ...]:
        viewer = current_viewer(context, request)
        with friendly_errors():
            viewer.require_admin()
        with documents_lock(context.settings):
            outcome = _store(context).remove_document(doc_id)
        lines = [f"{outcome.path}: {outcome.message}"]
        if outcome.status == "removed" and and_rebuild:
            progress(0.5, desc="索引を更新しています")
            report = update_index(context.settings, context.assistant.knowledge, {doc_id})
            lines += _index_lines(context, IngestReport(results=[outcome], index=report))
        elif outcome.status == "removed":
            lines.append("索引はまだ更新していません。「索引を再構築」を押すと回答から外れます。")
        context.audit.record(INGEST, viewer.actor(), detail=f"{outcome.path}: {outcome.status}")
        table = pd.DataFrame(ingest_rows([outcome.to_dict()]), columns=INGEST_HEADERS)
        return ("  \n".join(lines), table, *listing())

    def remover(doc_id: str) -> Callable[..., tuple[Any, ...]]:
        def remove_this(and_rebuild: bool, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
            return remove_document(doc_id, and_rebuild, request, progress)

        return remove_this

    def rebuild_now(request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        viewer = current_viewer(context, request)
        with friendly_errors():
            viewer.require_admin()
        text = rebuild(context, progress)
        context.audit.record(REBUILD, viewer.actor(), detail=text)
        return (text, *listing())

    ingest_button.click(
        ingest,
        inputs=[files, title, kind, as_of, scope, municipality, confidence, rebuild_after, keep_original],
        outputs=[message, results, status, documents, records, files],
        api_name="admin_ingest",
        **admin_options,
    )
    rebuild_button.click(
        rebuild_now,
        outputs=[message, status, documents, records],
        api_name="admin_rebuild",
        **admin_options,
    )

    def remove_api(doc_id: str, and_rebuild: bool, request: gr.Request) -> str:
        """Remove a registered document by its id (doc_id of its record), then rebuild the index if asked."""
        return remove_document(doc_id, and_rebuild, request, lambda *_a, **_k: None)[0]

    gr.api(remove_api, api_name="admin_remove", **admin_options)

    def export_audit(since_text: str, request: gr.Request) -> str:
        viewer = current_viewer(context, request)
        with friendly_errors():
            viewer.require_admin()
            since = parse_since(since_text)
            target = context.export_path("監査ログ", "csv")
            count = context.audit.export_csv(target, since=since)
        context.audit.record(AUDIT_EXPORT, viewer.actor(), detail=f"{count} 件（{(since_text or '').strip() or '全期間'}）")
        return str(target)

    audit_button.click(export_audit, inputs=[audit_since], outputs=[audit_file], api_name="admin_audit_export")
    refresh.click(show_status, outputs=[status, documents, records], api_name="admin_status")
    tab.select(show_status, outputs=[status, documents, records], api_name="admin_open", show_progress="hidden")


def _index_lines(context: UIContext, report: Any) -> list[str]:
    """What happened to the index after an ingest (the running assistant switches to an updated one)."""
    if report.index is not None:
        context.assistant.reload_index()
        context.assistant.warm_up()
        how = "差分で更新しました" if report.index.incremental else "再構築しました"
        return [f"索引を{how}（{report.index.chunks} チャンク、{report.index.seconds:.1f} 秒）"]
    if report.changed:
        return ["索引はまだ再構築していません。「索引を再構築」を押すと回答に反映されます。"]
    return []
