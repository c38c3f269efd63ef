"""Pure functions that turn library results into HTML, Markdown and table rows for the pages."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from assistant.privacy import kind_labels
from assistant.textnorm import normalize_inline

CONFIRMED = "確認済み"
UNCONFIRMED = "要確認"
CONFIDENCE_FILTER_ALL = "すべて"

KIND_LABELS: dict[str, str] = {
    "guidance": "手引・ガイドライン",
    "qa": "Q&A",
    "cases": "事例",
    "law": "法令",
    "other": "その他",
}

INGEST_LABELS: dict[str, str] = {
    "added": "追加",
    "updated": "更新",
    "unchanged": "変更なし",
    "removed": "削除",
    "error": "エラー",
    "not_found": "未登録",
}

INDEX_STATE_LABELS: dict[str, str] = {
    "ready": "最新",
    "stale": "再構築が必要",
    "missing": "未構築",
    "broken": "破損（再構築が必要）",
}

STALE_REASON_LABELS: dict[str, str] = {
    "corpus": "知識ベースが更新された",
    "documents": "登録文書が変わった",
    "embedding_model": "埋め込みモデルが変わった",
}

STATUTORY_UNKNOWN = "不明（要確認）"
STATUTORY_NONE = "（なし）"

CASE_HEADERS: list[str] = ["事例", "名称", "別名", "準ずる法定事務", "確度", "時点"]
INGEST_HEADERS: list[str] = ["ファイル", "結果", "チャンク数", "メッセージ"]
DOCUMENT_HEADERS: list[str] = ["タイトル", "種別", "範囲", "確度", "時点", "ファイル", "チャンク数", "登録日時"]
SCOPE_PUBLIC_LABEL = "公式資料（すべての利用者）"
SCOPE_MUNICIPALITY_LABEL = "団体の資料（その団体の利用者のみ）"

SourceLookup = Callable[[str], Mapping[str, Any] | None]


def esc(text: object) -> str:
    return html.escape("" if text is None else str(text))


# What could make Markdown fetch or link something: raw HTML and <autolinks>, the "](" "][" "]:" of
# links, images and reference definitions, and the bare URLs and e-mail addresses that GFM links.
_LINK_BRACKET = re.compile(r"\](?=[(\[:])")
_BARE_URL = re.compile(r"(?i)(https?|ftp|file|mailto|javascript|data):(//)?")
_WWW = re.compile(r"(?i)www\.")


def markdown_text(text: object) -> str:
    """Text (from a document or a user) for a Markdown component: shown as written, but never as HTML,
    an image or a link. The template's own emphasis and list markers are left alone."""
    value = "" if text is None else str(text)
    value = value.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;")
    value = _LINK_BRACKET.sub(r"\\]", value)
    value = _BARE_URL.sub(lambda m: m.group(1) + "\\:" + ("\\/\\/" if m.group(2) else ""), value)
    value = _WWW.sub(lambda m: m.group(0)[:3] + "\\.", value)
    return value.replace("@", "\\@")


# A citation marker as markdown_text leaves it: [n], or [n\] when another bracket follows.
_MARKER = re.compile(r"\[(\d{1,3})\\?\]")


def answer_markdown(text: object, turn: int | None = None) -> str:
    """An answer for the chat: shown as text (markdown_text), with each [n] a link that opens source n of
    answer `turn` in the sources panel (plain markers while the turn is not yet known)."""
    shown = markdown_text(text)
    if not turn:
        return shown
    return _MARKER.sub(lambda m: f"[[{m.group(1)}]](#cite-{int(turn)}-{m.group(1)})", shown)


def confidence_badge(confidence: str | None) -> str:
    css = "badge-ok" if confidence == CONFIRMED else "badge-check"
    return f'<span class="badge {css}">{esc(confidence or UNCONFIRMED)}</span>'


# -- citations --------------------------------------------------------------------------------------
def highlight_quote(text: str, quote: str) -> str:
    """The escaped text with the quote wrapped in <mark>; the quote alone, marked, if it is not found."""
    if quote and quote in text:
        start = text.index(quote)
        end = start + len(quote)
        return f"{esc(text[:start])}<mark>{esc(quote)}</mark>{esc(text[end:])}"
    flat_text, flat_quote = normalize_inline(text), normalize_inline(quote or "")
    if flat_quote and flat_quote in flat_text:
        return highlight_quote(flat_text, flat_quote)
    marked = f"<mark>{esc(quote)}</mark><hr>" if quote else ""
    return marked + esc(text)


def citation_card(
    number: int, citation: Mapping[str, Any], source: Mapping[str, Any] | None, *, active: bool = False
) -> str:
    title = esc(citation.get("title"))
    meta = " ・ ".join(
        part
        for part in (
            esc(citation.get("label") or citation.get("locator")),
            f"{esc(citation.get('as_of'))} 時点" if citation.get("as_of") else "",
        )
        if part
    )
    quote = str(citation.get("quote") or "")
    if source is not None:
        body = highlight_quote(str(source.get("text") or ""), quote)
        origins = "".join(
            f"<li>{esc(s.get('title'))}"
            + (f"（{esc(s.get('as_of'))} 時点）" if s.get("as_of") else "")
            + (f' <a href="{esc(s.get("url"))}" target="_blank" rel="noopener">{esc(s.get("url"))}</a>' if s.get("url") else "")
            + (f' <span class="link-kind">［{esc(s.get("link_label"))}］</span>' if s.get("link_label") else "")
            + "</li>"
            for s in source.get("sources", [])
        )
        origin_block = f'<div class="origin">原典:<ul>{origins}</ul></div>' if origins else ""
    else:
        body = f"<mark>{esc(quote)}</mark>" if quote else "（本文を表示できません）"
        origin_block = ""
    return (
        f'<div class="citation{" active" if active else ""}" data-number="{number}" data-source-id="{esc(citation.get("source_id"))}">'
        f'<div class="citation-head"><span class="citation-no">[{number}]</span> '
        f"<strong>{title}</strong> {confidence_badge(citation.get('confidence'))}</div>"
        f'<div class="citation-meta">{meta}</div>'
        f'<blockquote class="citation-quote">{esc(quote)}</blockquote>'
        f"<details{' open' if active else ''}><summary>本文を表示（引用箇所を強調）</summary>"
        f'<div class="source-text">{body}</div>{origin_block}</details>'
        f"</div>"
    )


def citations_html(
    citations: Iterable[Mapping[str, Any]], lookup: SourceLookup, *, active: int | None = None, heading: str = ""
) -> str:
    """One card per cited passage, numbered as the answer numbers its sources ([n] of the source list).

    The cards of source `active` are opened, with the quote highlighted in the passage; `heading` says which
    answer the panel shows."""
    cards = []
    for i, c in enumerate(citations, start=1):
        number = int(c.get("number") or i)
        cards.append(citation_card(number, c, lookup(str(c.get("source_id", ""))), active=number == active))
    head = f'<div class="sources-heading">{esc(heading)}</div>' if heading else ""
    if not cards:
        return head + '<div class="sources-empty">この回答には出典がありません。</div>'
    return head + '<div class="sources">' + "".join(cards) + "</div>"


def empty_sources_html() -> str:
    return '<div class="sources-empty">質問すると、回答の根拠となった資料がここに表示されます。</div>'


def masked_note(masked: object) -> str:
    """Say which kinds of personal data were masked before the text was processed ("" when none)."""
    if not masked:
        return ""
    kinds = [masked] if isinstance(masked, str) else list(masked) if isinstance(masked, (list, tuple, set)) else []
    labels = "、".join(kind_labels(str(k) for k in kinds)) or "個人情報"
    return f"入力に含まれていた個人情報（{labels}）をマスクしてから処理しました。"


# -- progress ---------------------------------------------------------------------------------------
def progress_html(done: int, total: int) -> str:
    total = max(int(total), 0)
    done = min(max(int(done), 0), total) if total else 0
    percent = round(100 * done / total) if total else 0
    return (
        f'<div class="progress-wrap" role="progressbar" aria-valuemin="0" aria-valuemax="{total}" '
        f'aria-valuenow="{done}"><div class="progress-bar" style="width:{percent}%"></div></div>'
        f'<div class="progress-label">{done} / {total} 問（{percent}%）</div>'
    )


# -- cases ------------------------------------------------------------------------------------------
def case_label(case: Mapping[str, Any]) -> str:
    return f"({case['case']}) {case['name']}"


def case_matches(case: Mapping[str, Any], query: str, confidence: str) -> bool:
    if confidence and confidence != CONFIDENCE_FILTER_ALL and case.get("confidence") != confidence:
        return False
    needles = [normalize_inline(part).lower() for part in (query or "").split()]
    if not needles:
        return True
    fields: list[str] = [
        str(case.get("case", "")),
        f"({case.get('case', '')})",
        str(case.get("name") or ""),
        str(case.get("analogous_statutory_affair") or ""),
        str(case.get("description") or ""),
        str(case.get("case_number") or ""),
        str(case.get("benefit") or ""),
        *case.get("aliases", []),
        *case.get("example_affairs", []),
        *case.get("target_persons", []),
        *case.get("information_kinds", []),
    ]
    haystack = normalize_inline("\n".join(fields)).lower()
    return all(part in haystack for part in needles)


def statutory_text(case: Mapping[str, Any]) -> str:
    """The analogous statutory affair, or why there is none: unknown unless a confirmed entry says so."""
    if case.get("analogous_statutory_affair"):
        return str(case["analogous_statutory_affair"])
    return STATUTORY_NONE if case.get("analogous_statutory_confidence") == CONFIRMED else STATUTORY_UNKNOWN


def case_rows(cases: Iterable[Mapping[str, Any]], query: str = "", confidence: str = CONFIDENCE_FILTER_ALL) -> list[list[Any]]:
    return [
        [
            case["case"],
            case["name"],
            "、".join(case.get("aliases", [])),
            statutory_text(case),
            case.get("confidence", ""),
            case.get("as_of", ""),
        ]
        for case in cases
        if case_matches(case, query, confidence)
    ]


def _bullets(items: Iterable[str]) -> str:
    lines = [f"- {item}" for item in items if item]
    return "\n".join(lines) if lines else "- （登録なし）"


def case_detail_markdown(case: Mapping[str, Any], source_titles: Mapping[str, Mapping[str, Any]]) -> str:
    statutory_conf = case.get("analogous_statutory_confidence")
    statutory_line = statutory_text(case)
    if case.get("analogous_statutory_affair") and statutory_conf:
        statutory_line += f"（{statutory_conf}）"
    numbers = []
    if case.get("case_number"):
        numbers.append(f"事例番号 {case['case_number']}")
    if case.get("old_appendix2_item"):
        numbers.append(f"旧別表第二 {case['old_appendix2_item']} の項")
    sources = []
    for source_id in case.get("sources", []):
        info = source_titles.get(source_id) or {}
        title = info.get("title") or source_id
        as_of = f"（{info['as_of']} 時点）" if info.get("as_of") else ""
        url = f" <{info['url']}>" if info.get("url") else ""
        kind = f"　［{info['link_label']}］" if info.get("link_label") else ""
        sources.append(f"{title}{as_of}{url}{kind}")
    return "\n".join(
        [
            f"### {case_label(case)}",
            f"**確度:** {case.get('confidence', '')}　**時点:** {case.get('as_of', '')}"
            + (f"　**{' / '.join(numbers)}**" if numbers else ""),
            "",
            str(case.get("description") or ""),
            "",
            "#### 準ずる法定事務",
            statutory_line,
            "",
            "#### 条件（対象者・目的・給付）",
            "**対象者**",
            _bullets(case.get("target_persons", [])),
            "",
            "**目的を表す語**",
            _bullets(case.get("purpose_terms", [])),
            "",
            f"**給付の内容:** {case.get('benefit') or '（登録なし）'}",
            "",
            "#### 照会できる情報の種類",
            _bullets(case.get("information_kinds", [])),
            "",
            "#### 別名・通称",
            "、".join(case.get("aliases", [])) or "（登録なし）",
            "",
            "#### 事務の例",
            _bullets(case.get("example_affairs", [])),
            "",
            "#### 出典",
            _bullets(sources),
        ]
    )


# -- documents and index ----------------------------------------------------------------------------
def ingest_rows(results: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            str(r.get("path", "")).rsplit("/", 1)[-1],
            INGEST_LABELS.get(str(r.get("status")), str(r.get("status"))),
            r.get("chunks", 0),
            r.get("message", ""),
        ]
        for r in results
    ]


def document_scope(record: Mapping[str, Any]) -> str:
    if record.get("scope") == "municipality":
        return f"団体の資料（{record.get('municipality') or '団体名なし'}）"
    return "公式資料"


def document_confidence(record: Mapping[str, Any]) -> str:
    return str(record.get("confidence") or (CONFIRMED if record.get("official") else UNCONFIRMED))


def document_rows(records: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            r.get("title", ""),
            KIND_LABELS.get(str(r.get("kind")), str(r.get("kind"))),
            document_scope(r),
            document_confidence(r),
            r.get("as_of", "") + ("" if r.get("as_of_given") else "（仮）"),
            r.get("file_name", ""),
            len(r.get("chunks", [])),
            r.get("ingested_at", ""),
        ]
        for r in records
    ]


def index_status_markdown(status: Mapping[str, Any]) -> str:
    state = str(status.get("state", "missing"))
    lines = [f"**索引の状態:** {INDEX_STATE_LABELS.get(state, state)}"]
    if status.get("stale_reasons"):
        reasons = "、".join(STALE_REASON_LABELS.get(r, r) for r in status["stale_reasons"])
        lines.append(f"**再構築が必要な理由:** {reasons}")
    if status.get("exists"):
        lines += [
            f"**文書数（索引内）:** {status.get('documents', 0)}",
            f"**チャンク数:** {status.get('chunks', 0)}",
            f"**最終構築:** {status.get('built_at') or '不明'}",
        ]
    lines.append(f"**登録済み文書:** {status.get('documents_registered', 0)}")
    if status.get("damaged_document_records"):
        lines.append(f"**読み込めない登録記録:** {', '.join(status['damaged_document_records'])}")
    if status.get("error"):
        lines.append(f"**エラー:** {status['error']}")
    return "  \n".join(lines)


# -- reply drafts -----------------------------------------------------------------------------------
COVERAGE_LABELS: dict[str, str] = {
    "answered": "回答あり",
    "asks_back": "自治体への確認事項のみ（回答は未記載）",
    "referred": "個別に案内する旨のみ（回答は未記載）",
    "unanswered": "未回答",
}
QUOTE_CHARS = 60


def question_map_html(questions: Iterable[Mapping[str, Any]]) -> str:
    """Each question of the inquiry → the paragraph of the draft that answers it; questions left without an
    answer stand out, so the officer sees what still needs writing."""
    rows = []
    for number, q in enumerate(questions, start=1):
        coverage = str(q.get("coverage") or "unanswered")
        css = "" if coverage == "answered" else (" unanswered" if coverage == "unanswered" else " partial")
        text = str(q.get("question") or "")
        shown = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"
        paragraph = f"{q['paragraph']}." if q.get("paragraph") else "（なし）"
        rows.append(
            f'<tr class="q-row{css}"><td>{number}</td><td>{esc(shown)}</td><td>{esc(paragraph)}</td>'
            f"<td>{esc(COVERAGE_LABELS.get(coverage, coverage))}</td></tr>"
        )
    if not rows:
        return '<div class="sources-empty">回答案を作成すると、問い合わせの質問ごとに回答した段落を示します。</div>'
    missing = sum(1 for q in questions if (q.get("coverage") or "unanswered") != "answered")
    summary = (
        f'<div class="q-summary">すべての質問（{len(rows)} 件）に回答した段落があります。</div>' if not missing
        else f'<div class="q-summary q-missing">回答が記載されていない質問が {missing} 件あります（色付きの行）。</div>'
    )
    return (
        summary + '<table class="question-map"><thead><tr><th>質問</th><th>問い合わせの記載</th><th>回答案の段落</th>'
        "<th>状態</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def letter_sources(citations: Iterable[Mapping[str, Any]]) -> str:
    """The sources as a letter cites them: [n] source name and section（date）, once per number."""
    lines: dict[int, str] = {}
    for i, c in enumerate(citations, start=1):
        number = int(c.get("number") or i)
        if number in lines:
            continue
        label = str(c.get("label") or f"{c.get('title')}（{c.get('locator')}）")
        as_of = f"（{c['as_of']}時点）" if c.get("as_of") else ""
        lines[number] = f"[{number}] {label}{as_of}"
    return "\n".join(lines[n] for n in sorted(lines))
