"""Small official-looking documents generated on the fly (no binary fixtures in the repository)."""

from __future__ import annotations

from pathlib import Path

JAPANESE_LINES = [
    "第1章 独自利用事務の情報連携の概要",
    "独自利用事務の情報連携を行うには、個人情報保護委員会への届出が必要です。",
    "届出の種類は新規、変更、中止及び届出書の差替えの4種類です。",
]


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for lines in pages:
        pdf.setFont("HeiseiKakuGo-W5", 10)
        y = 800
        for line in lines:
            pdf.drawString(40, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return path


def make_image_only_pdf(path: Path) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    pdf.rect(50, 50, 200, 200, fill=1)
    pdf.showPage()
    pdf.save()
    return path


def make_encrypted_pdf(path: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_name("plain.pdf"), [JAPANESE_LINES])
    writer = PdfWriter()
    for page in PdfReader(str(plain)).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("届出の種類", level=1)
    document.add_paragraph("変更の届出は、事例又は提供を求める特定個人情報に変更がある場合に行います。")
    document.add_heading("受付期間", level=1)
    document.add_paragraph("届出書の差替えは随時受け付けます。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "種類"
    table.cell(0, 1).text = "受付"
    table.cell(1, 0).text = "中止の届出"
    table.cell(1, 1).text = "受付期間"
    document.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "事例一覧"
    sheet.append(["番号", "事例名"])
    sheet.append([1, "子どもの医療費助成に関する事務"])
    sheet.append([32, "不妊治療費用の補助に関する事務"])
    workbook.save(str(path))
    return path
