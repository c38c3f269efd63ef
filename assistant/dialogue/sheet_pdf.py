"""The 事前相談シート as an A4 PDF (reportlab), with a Japanese TrueType font embedded.

The font is the first of FONT_CANDIDATES found on the machine (Debian: fonts-ipafont-gothic, which
scripts/install-browser.sh installs, or fonts-ipaexfont-gothic); reportlab embeds the glyphs the sheet uses.
Without any of them no PDF is written (a PDF whose Japanese font is not embedded may not show the same on
every reader): the error says which package to install. Nothing is fetched at run time.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer
from reportlab.platypus import Table as PdfTable
from reportlab.platypus import TableStyle

from assistant.dialogue.export import MARGIN_MM, Block, Bullets, Heading, Para, Table
from assistant.validation import InputError, clean_text

FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/truetype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)
EMBEDDED_FONT = "SheetGothic"
FONT_PACKAGE = "fonts-ipafont-gothic"
HEADING_COLOUR = colors.HexColor("#1F2A44")
RULE_COLOUR = colors.HexColor("#8A94A6")
HEADER_FILL = colors.HexColor("#E8ECF2")


class FontMissing(InputError):
    """No Japanese TrueType font to embed is installed."""


def font_path() -> Path | None:
    return next((path for path in FONT_CANDIDATES if path.is_file()), None)


@functools.cache
def _register(path: Path) -> str:
    pdfmetrics.registerFont(TTFont(EMBEDDED_FONT, str(path)))
    return EMBEDDED_FONT


def sheet_font() -> str:
    """The registered name of the Japanese font that is embedded in the PDF."""
    path = font_path()
    if path is None:
        raise FontMissing(
            "PDF に埋め込む日本語フォントが見つからないため、PDF を作成できません。"
            f"Debian パッケージ {FONT_PACKAGE} を入れてください（scripts/install-browser.sh が入れます）。"
            "Markdown または Word（DOCX）では書き出せます"
        )
    return _register(path)


def _styles(font: str) -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK")
    return {
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=9, leading=12.5),
        "head-cell": ParagraphStyle("head-cell", parent=body, fontSize=9, leading=12.5, textColor=HEADING_COLOUR),
        "title": ParagraphStyle("title", parent=body, fontSize=16, leading=22, alignment=TA_CENTER, spaceAfter=8,
                                textColor=HEADING_COLOUR),
        "h1": ParagraphStyle("h1", parent=body, fontSize=12, leading=17, spaceBefore=9, spaceAfter=4, textColor=HEADING_COLOUR),
        "h2": ParagraphStyle("h2", parent=body, fontSize=10.5, leading=15, spaceBefore=5, spaceAfter=2, textColor=HEADING_COLOUR),
    }


def _text(value: str) -> str:
    """Text for a reportlab Paragraph, which reads a small XML markup: escaped, control codes dropped."""
    return escape(clean_text(value))


def _table(block: Table, styles: dict[str, ParagraphStyle], width: float) -> PdfTable:
    widths = [width * w / sum(block.widths) for w in block.widths]
    rows = [] if block.form else [[Paragraph(_text(h), styles["head-cell"]) for h in block.header]]
    for row in block.rows:
        cells = [Paragraph(_text(c), styles["head-cell" if block.form and i == 0 else "cell"]) for i, c in enumerate(row)]
        rows.append(cells)
    table = PdfTable(rows, colWidths=widths, repeatRows=0 if block.form else 1)
    commands = [
        ("FONTNAME", (0, 0), (-1, -1), styles["cell"].fontName),  # else the table sets Helvetica, not embedded
        ("GRID", (0, 0), (-1, -1), 0.5, RULE_COLOUR),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    commands.append(("BACKGROUND", (0, 0), (0, -1), HEADER_FILL) if block.form else ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL))
    if block.form:
        commands.append(("MINROWHEIGHT", (0, 0), (-1, -1), 16))
    table.setStyle(TableStyle(commands))
    return table


def _flowables(blocks: list[Block], styles: dict[str, ParagraphStyle], width: float) -> list:  # noqa: ANN401
    story: list = []
    for block in blocks:
        if isinstance(block, Heading):
            style = styles["title"] if block.level == 0 else styles["h1" if block.level == 1 else "h2"]
            story.append(Paragraph(_text(block.text), style))
        elif isinstance(block, Para):
            story += [Paragraph(_text(block.text), styles["body"]), Spacer(1, 2)]
        elif isinstance(block, Bullets):
            if block.items:
                items = [ListItem(Paragraph(_text(item), styles["body"]), leftIndent=14) for item in block.items]
                story.append(
                    ListFlowable(items, bulletType="1" if block.numbered else "bullet", start=1 if block.numbered else "•",
                                 bulletFontName=styles["body"].fontName, bulletFontSize=8.5, leftIndent=14)
                )
        else:
            story += [_table(block, styles, width), Spacer(1, 4)]
    return story


def _page_number(canvas, document) -> None:  # noqa: ANN001 - reportlab's callback signature
    canvas.saveState()
    canvas.setFont(sheet_font(), 8)
    canvas.drawCentredString(A4[0] / 2, MARGIN_MM * mm / 2, f"{document.page}")
    canvas.restoreState()


def render_pdf(blocks: list[Block], *, title: str, author: str, subject: str) -> bytes:
    """The blocks as an A4 PDF, whole, in memory."""
    styles = _styles(sheet_font())
    buffer = io.BytesIO()
    margin = MARGIN_MM * mm
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=clean_text(title),
        author=clean_text(author),
        subject=clean_text(subject),
        creator=clean_text(title),
        lang="ja-JP",
        initialFontName=styles["body"].fontName,
    )
    document.build(_flowables(blocks, styles, A4[0] - 2 * margin), onFirstPage=_page_number, onLaterPages=_page_number)
    return buffer.getvalue()
