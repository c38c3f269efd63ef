"""事例一覧: the published case types as a searchable, filterable table with a detail view."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from assistant.knowledge.hosts import link_label
from assistant.ui.common import user_error
from assistant.ui.context import UIContext
from assistant.ui.render import (
    CASE_HEADERS,
    CONFIDENCE_FILTER_ALL,
    CONFIRMED,
    UNCONFIRMED,
    case_detail_markdown,
    case_label,
    case_rows,
)

DETAIL_PLACEHOLDER = "表の行をクリックするか、上の一覧から事例を選ぶと、詳細が表示されます。"


def _source_titles(context: UIContext) -> dict[str, dict[str, Any]]:
    corpus = context.settings.corpus_dir
    return {
        source_id: {"title": s.title, "url": s.url, "as_of": s.as_of, "link_label": link_label(s.url, corpus)}
        for source_id, s in context.assistant.knowledge.sources.items()
    }


def _table(context: UIContext, query: str, confidence: str) -> pd.DataFrame:
    rows = case_rows(context.assistant.cases(), query or "", confidence or CONFIDENCE_FILTER_ALL)
    return pd.DataFrame(rows, columns=CASE_HEADERS)


def _detail(context: UIContext, case_id: Any) -> str:
    if case_id in (None, ""):
        return DETAIL_PLACEHOLDER
    try:
        wanted = int(case_id)
    except (TypeError, ValueError) as exc:
        raise user_error(f"事例番号 {case_id!r} は数字で指定してください") from exc
    for case in context.assistant.cases():
        if case["case"] == wanted:
            return case_detail_markdown(case, _source_titles(context))
    raise user_error(f"事例 ({wanted}) は登録されていません")


def build_cases_page(context: UIContext) -> None:
    cases = context.assistant.cases()
    gr.Markdown("個人情報保護委員会が公表している独自利用事務の事例です。名称・別名・事務の例などで検索できます。")
    with gr.Row():
        query = gr.Textbox(label="検索（空白区切りで AND 検索）", placeholder="例: 医療費 ひとり親", scale=3, elem_id="cases-query")
        confidence = gr.Radio(
            [CONFIDENCE_FILTER_ALL, CONFIRMED, UNCONFIRMED], value=CONFIDENCE_FILTER_ALL, label="確度", scale=2
        )
    table = gr.Dataframe(
        value=_table(context, "", CONFIDENCE_FILTER_ALL),
        headers=CASE_HEADERS,
        interactive=False,
        wrap=True,
        max_height=420,
        column_widths=["6%", "34%", "25%", "20%", "8%", "7%"],
        label="事例の一覧",
        elem_id="cases-table",
    )
    picker = gr.Dropdown(
        choices=[(case_label(c), c["case"]) for c in cases],
        value=None,
        label="事例を選ぶ",
        elem_id="cases-picker",
    )
    detail = gr.Markdown(DETAIL_PLACEHOLDER, label="事例の詳細", show_label=False, elem_id="cases-detail")

    def search(text: str, level: str) -> pd.DataFrame:
        return _table(context, text, level)

    gr.on(
        triggers=[query.submit, query.change, confidence.change],
        fn=search,
        inputs=[query, confidence],
        outputs=[table],
        api_name="cases_search",
        trigger_mode="always_last",
        show_progress="hidden",
    )

    def show(case_id: Any) -> str:
        return _detail(context, case_id)

    picker.change(show, inputs=[picker], outputs=[detail], api_name="case_detail")

    def select(data: gr.SelectData) -> Any:
        row = data.row_value if isinstance(data.row_value, list) else None
        if not row:
            return gr.skip()
        return int(row[0])

    # Needs the browser's selection event data, so it is left out of the API listing (`case_detail` is the API).
    table.select(select, outputs=[picker], api_name="case_select", api_visibility="undocumented")
