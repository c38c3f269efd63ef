"""Official case tables into the registry: a preview first, then corrections with the file as their source;
a table with bad rows gets a message per row and changes nothing."""

import csv
import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.config import load_settings
from assistant.curation.curator import Curator, CurationError
from assistant.curation.tables import TableImporter
from assistant.knowledge.overlay import knowledge_facts

AS_OF = "2026-04-01"
HEADER = ["類型", "事務の名称", "準ずる法定事務", "情報照会者", "情報提供者", "特定個人情報", "備考"]
ROWS = [
    # by name: confirms the analogous affair and states the information
    ["", "予防接種に係る実費の徴収に関する事務", "予防接種法による給付の支給又は実費の徴収に関する事務", "市町村長", "市町村長",
     "地方税関係情報、住民票関係情報", ""],
    # by our case number, written as the commission's list writes it
    ["(23)", "肝炎・結核等の感染症の医療費助成に関する事務", "", "", "都道府県知事、市町村長", "", "備考は読まない"],
    # by number, with a new analogous affair
    ["事例9", "", "住宅地区改良法による改良住宅の管理若しくは家賃若しくは敷金の決定若しくは変更又は収入超過者に対する措置に関する事務",
     "市町村長", "", "", ""],
]


@pytest.fixture
def curator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Curator:
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    settings = load_settings()
    settings.ensure_dirs()
    return Curator(settings)


def write_xlsx(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "事例一覧"
    sheet.append(["情報連携の対象となる独自利用事務の事例（令和8年4月1日現在）"])  # a title row above the header
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_an_xlsx_table_is_previewed_then_applied_to_several_cases(curator: Curator, tmp_path: Path) -> None:
    table = write_xlsx(tmp_path / "事例一覧_令和8年4月.xlsx", ROWS)
    importer = TableImporter(curator)
    before = knowledge_facts(curator.knowledge())
    plan = importer.plan(table, as_of=AS_OF)
    assert plan.ok, plan.errors
    assert plan.cases == [5, 9, 23] and plan.unread_columns == []
    assert plan.columns["準ずる法定事務"] == "analogous_statutory_affair" and "備考" not in plan.columns
    where = {row.case: row.where for row in plan.rows}
    assert where[5] == "シート「事例一覧」の 3行目"
    changes = {(c.ref.key, c.ref.field): c for c in plan.changes}
    assert changes[("5", "analogous_statutory_affair")].diff()[0] == ("確度", "要確認", "確認済み")
    assert changes[("23", "information_providers")].after.value == ["都道府県知事", "市町村長"]
    # A preview stores nothing.
    assert curator.store.revision() == 0 and knowledge_facts(curator.knowledge()) == before
    stored = importer.apply(plan)
    assert len(stored) == len(plan.changes) and len({row.batch for row in stored}) == 1
    knowledge = curator.knowledge()
    source = f"事例一覧_令和8年4月.xlsx（{AS_OF}時点）"
    for case_id in (5, 9, 23):
        assert knowledge.cases[case_id].sources[0] == source and knowledge.cases[case_id].as_of == AS_OF
    assert knowledge.cases[5].analogous_statutory_confidence == "確認済み"
    assert knowledge.cases[5].information_confidence == "確認済み"  # the table states every information field
    assert knowledge.cases[9].analogous_statutory_affair.startswith("住宅地区改良法")
    assert knowledge.cases[23].information_confidence is None  # kinds not in the table: not claimed as confirmed
    again = importer.plan(table, as_of=AS_OF)
    assert again.ok and again.changes == []  # the registry now says what the table says


def test_a_csv_table_with_its_own_headers_is_mapped_by_the_user(curator: Curator, tmp_path: Path) -> None:
    header = ["No.", "独自利用事務", "準拠法定事務", "提供機関", "担当者"]
    rows = [["10", "ひとり親等の医療費助成に関する事務又はこれらに類するその他の事務",
             "児童扶養手当法による児童扶養手当の支給に関する事務", "都道府県知事", ""],
            ["14", "", "", "市町村長", ""]]
    table = write_csv(tmp_path / "jirei.csv", rows, header, encoding="cp932")
    importer = TableImporter(curator)
    unmapped = importer.plan(table, as_of=AS_OF)
    assert not unmapped.ok and "見出しの行が見つかりません" in unmapped.errors[0] and "--map" in unmapped.errors[0]
    plan = importer.plan(table, as_of=AS_OF, mapping=["No.=case", "独自利用事務=事務の名称", "準拠法定事務=準ずる法定事務"])
    assert plan.ok, plan.errors
    assert plan.unread_columns == ["担当者"] and plan.cases == [10, 14]
    importer.apply(plan)
    assert curator.knowledge().cases[14].information_providers == ["市町村長"]
    assert curator.knowledge().cases[14].sources[0] == f"jirei.csv（{AS_OF}時点）"


BAD_ROWS = [
    ["", "存在しない事務の名称", "", "", "市町村長", "", ""],
    ["", "障害児通所給付費等の支給に関する事務又は障害福祉サービスの提供に関する事務又はこれらに類するその他の事務",
     "", "", "市町村長", "", ""],
    ["5", "", "", "", "市町村長", "", ""],
    ["5", "", "", "", "都道府県知事", "", ""],
    ["7", "予防接種に係る実費の徴収に関する事務", "", "", "市町村長", "", ""],
    ["五", "", "", "", "市町村長", "", ""],
    ["8", "", "", "", "担当 03-1234-5678", "", ""],
    ["99", "", "", "", "市町村長", "", ""],
    ["12", "", "", "", "", "【要確認】地方税関係情報", ""],
    ["13", "", "", "", "市町村長", "", ""],  # a good row: still nothing changes
]


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_table_with_bad_rows_gets_a_message_per_row_and_changes_nothing(curator: Curator, tmp_path: Path, kind: str) -> None:
    table = write_xlsx(tmp_path / "bad.xlsx", BAD_ROWS) if kind == "xlsx" else write_csv(tmp_path / "bad.csv", BAD_ROWS)
    importer = TableImporter(curator)
    plan = importer.plan(table, as_of=AS_OF)
    first = 3 if kind == "xlsx" else 2
    prefix = "シート「事例一覧」の " if kind == "xlsx" else ""
    by_row = {error.split(": ", 1)[0]: error.split(": ", 1)[1] for error in plan.errors}
    expected = {
        0: "事例を特定できません", 1: "事例(3)と事例(4)に当たります", 3: "事例(5) は", 4: "事例(7)ですが、事務の名称は事例(5)",
        5: "番号（1〜35）", 6: "個人情報", 7: "事例(99) はありません", 8: "【要確認】",
    }
    for offset, words in expected.items():
        assert words in by_row[f"{prefix}{first + offset}行目"], (offset, by_row)
    assert len(plan.errors) == len(expected) and not plan.changes
    with pytest.raises(CurationError, match="何も変更していません"):
        importer.apply(plan)
    assert curator.store.revision() == 0


def test_a_pdf_table_is_read_where_the_text_layer_keeps_the_columns(curator: Curator, tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    path = tmp_path / "事例一覧.pdf"
    pdf = canvas.Canvas(str(path), pagesize=landscape(A4))
    pdf.setFont("HeiseiKakuGo-W5", 9)
    rows = [["類型", "事務の名称", "情報提供者"], ["(19)", "心身障害者扶養共済制度の掛金減免に関する事務", "都道府県知事"],
            ["(31)", "難病患者の医療費助成に関する事務又はこれらに類するその他の事務", "都道府県知事、市町村長"]]
    for number, row in enumerate(rows):
        for cell, x in zip(row, (40, 90, 420)):
            pdf.drawString(x, 500 - 20 * number, cell)
    pdf.save()
    plan = TableImporter(curator).plan(path, as_of=AS_OF)
    assert plan.ok, plan.errors
    assert {(c.ref.key, tuple(c.after.value)) for c in plan.changes} == {("19", ("都道府県知事",)),
                                                                       ("31", ("都道府県知事", "市町村長"))}


def test_the_command_line_previews_then_applies_and_the_registry_shows_the_file(curator: Curator, tmp_path: Path,
                                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    table = write_xlsx(tmp_path / "公式事例一覧.xlsx", ROWS)
    assert main(["knowledge", "import", str(table), "--json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["applied"] is False and preview["cases"] == [5, 9, 23] and curator.store.revision() == 0
    assert main(["knowledge", "import", str(table), "--apply", "--no-index", "--json"]) == 2  # no date given
    assert "--as-of" in capsys.readouterr().err and curator.store.revision() == 0
    assert main(["knowledge", "import", str(table), "--apply", "--as-of", AS_OF, "--no-index", "--user", "kanri",
                 "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["applied"] is True and len(applied["corrections"]) == preview["changes"]
    assert main(["cases", "--json"]) == 0
    registry = {row["case"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(registry[5]) == ["case", "name", "aliases", "analogous_statutory_affair", "confidence", "as_of", "sources"]
    assert "公式事例一覧.xlsx" in registry[5]["sources"][0] and registry[5]["as_of"] == AS_OF
    assert registry[9]["analogous_statutory_affair"].startswith("住宅地区改良法")
    assert main(["knowledge", "log", "--json"]) == 0
    assert {row["user"] for row in json.loads(capsys.readouterr().out)} == {"kanri"}
    bad = write_csv(tmp_path / "bad.csv", BAD_ROWS)
    assert main(["knowledge", "import", str(bad), "--apply", "--as-of", AS_OF, "--no-index"]) == 1
    out = capsys.readouterr().out
    assert "2行目: 事例を特定できません" in out and "何も変更していません" in out
