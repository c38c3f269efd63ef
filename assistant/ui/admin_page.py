"""資料管理 (administrators): upload official documents, watch ingest progress, rebuild the index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from assistant.audit import AUDIT_EXPORT, INGEST, REBUILD, parse_since
from assistant.index.store import build_index, index_status
from assistant.ingest.docstore import DocumentStore
from assistant.ingest.pipeline import IngestOptions, Upload, ingest_documents
from assistant.ui.common import ADMIN_GROUP, ADMIN_LIMIT, current_viewer, friendly_errors, user_error
from assistant.ui.context import UIContext
from assistant.ui.render import (
    DOCUMENT_HEADERS,
    INGEST_HEADERS,
    KIND_LABELS,
    document_rows,
    index_status_markdown,
    ingest_rows,
)

ACCEPTED_TYPES = [".pdf", ".docx", ".xlsx", ".csv", ".html", ".htm", ".md", ".txt"]
BUILD_STAGES = 6  # build_index reports five stages; the sixth is loading the new index

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


def build_admin_page(context: UIContext, tab: gr.Tab) -> None:
    gr.Markdown(
        "公式資料（手引、Q&A、事例、法令など）を登録すると、相談の回答に使われます。"
        "公式資料として登録しない資料は「要確認」として扱われます。個人情報は登録時にマスクされ、"
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
            with gr.Row():
                kind = gr.Dropdown(
                    [(label, value) for value, label in KIND_LABELS.items()],
                    value="guidance",
                    label="資料の種別",
                    elem_id="admin-kind",
                )
                as_of = gr.Textbox(label="時点（YYYY-MM-DD）", placeholder="例: 2024-05-27", elem_id="admin-as-of")
            rebuild_after = gr.Checkbox(value=True, label="登録後に索引を再構築する")
            with gr.Row():
                official = gr.Checkbox(value=False, label="公式資料として登録する（確認済みとして扱う）", elem_id="admin-official")
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

    def show_status(request: gr.Request) -> tuple[str, pd.DataFrame]:
        with friendly_errors():
            current_viewer(context, request).require_admin()
        return _status(context)

    def ingest(
        uploads: list[str] | None,
        kind_value: str,
        as_of_text: str,
        and_rebuild: bool,
        as_official: bool,
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
        date = (as_of_text or "").strip() or None
        uploads = [Upload(path, origin=context.uploads_dir / path.name, label=path.name) for path in paths]
        report = ingest_documents(
            context.settings, uploads, IngestOptions(kind=kind_value, as_of=date, official=bool(as_official),
                                                     keep_original=bool(keep)),
            update_index=bool(and_rebuild), knowledge=context.assistant.knowledge,
            progress=lambda event: progress(event.fraction, desc=("索引: " if event.stage == "index" else "") + event.message),
        )
        outcomes = report.results
        lines = [f"{len(paths)} 件のファイルを処理しました（エラー {report.errors} 件）。"]
        if report.index is not None:
            context.assistant.reload_index()
            context.assistant.warm_up()
            how = "差分で更新しました" if report.index.incremental else "再構築しました"
            lines.append(f"索引を{how}（{report.index.chunks} チャンク、{report.index.seconds:.1f} 秒）")
        elif report.changed:
            lines.append("索引はまだ再構築していません。「索引を再構築」を押すと回答に反映されます。")
        context.audit.record(
            INGEST, viewer.actor(),
            detail="; ".join(f"{r.path}: {r.status}" + (f"（{r.message}）" if r.status == "error" else "") for r in outcomes),
        )
        table = pd.DataFrame(ingest_rows(r.to_dict() for r in outcomes), columns=INGEST_HEADERS)
        status_text, document_table = _status(context)
        return "  \n".join(lines), table, status_text, document_table

    def rebuild_now(request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[str, str, pd.DataFrame]:
        viewer = current_viewer(context, request)
        with friendly_errors():
            viewer.require_admin()
        text = rebuild(context, progress)
        context.audit.record(REBUILD, viewer.actor(), detail=text)
        status_text, document_table = _status(context)
        return text, status_text, document_table

    ingest_button.click(
        ingest,
        inputs=[files, kind, as_of, rebuild_after, official, keep_original],
        outputs=[message, results, status, documents],
        api_name="admin_ingest",
        **admin_options,
    )
    rebuild_button.click(
        rebuild_now,
        outputs=[message, status, documents],
        api_name="admin_rebuild",
        **admin_options,
    )
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
    refresh.click(show_status, outputs=[status, documents], api_name="admin_status")
    tab.select(show_status, outputs=[status, documents], api_name="admin_open", show_progress="hidden")
