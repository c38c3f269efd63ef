"""After a correction, without a code change or a restart: the registry, `cases --json`, the classifier, the answers
and their citations follow it, and the index is marked stale until it is rebuilt; a revert restores all of it."""

import json
from pathlib import Path

import pytest

from assistant.audit import Actor
from assistant.cli import main
from assistant.config import load_settings
from assistant.curation.curator import Curator, SetRequest
from assistant.index.store import build_index, index_status
from assistant.ingest.docstore import DocumentStore
from assistant.service import Assistant
from assistant.textnorm import normalize

from tests.caches import link_model_caches

QUESTION = "予防接種の自己負担金を徴収する事務は、どの事例に当たりますか"
LOCAL_NAME = "ふるさと子育て応援金の支給に関する事務"
ADMIN = Actor(user="kanri", role="管理者")


@pytest.fixture
def home(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(path))
    link_model_caches(shared_cache, path / "cache")  # the embedding and reader caches of the session's index
    return path


def analogous_citation(result: dict) -> dict:
    return next(c for c in result["citations"] if c["source_id"] == "case-05" and "準ずる法定事務" in c["quote"])


def registry(capsys: pytest.CaptureFixture[str]) -> dict[int, dict]:
    assert main(["cases", "--json"]) == 0
    return {row["case"]: row for row in json.loads(capsys.readouterr().out)}


def test_a_correction_reaches_the_registry_classifier_answers_and_index_and_a_revert_restores(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    running = Assistant(settings)  # stands for the running app: it is never restarted below
    before_answer = running.ask(QUESTION)
    before_citation = analogous_citation(before_answer)
    assert before_citation["confidence"] == "要確認" and "【要確認】準ずる法定事務" in before_answer["answer"]
    assert running.classify(LOCAL_NAME)["no_fit"] is True
    before_registry = registry(capsys)
    assert index_status(settings, running.knowledge)["state"] == "ready"

    # The help desk ingested the official list; an administrator confirms case 5 from page 3 of it.
    document = home / "事例一覧_令和8年4月.md"
    document.write_text("# 事例一覧\n\n事例(5) 予防接種に係る実費の徴収に関する事務。準ずる法定事務は予防接種法による給付の支給又は"
                        "実費の徴収に関する事務。\n", encoding="utf-8")
    DocumentStore(settings.documents_dir, settings.corpus_dir).ingest(document, kind="cases", as_of="2026-04-01",
                                                                       title="独自利用事務の事例一覧（令和8年4月）", official=True)
    curator = Curator(settings)
    curator.set(SetRequest("cases.5.analogous_statutory_affair", confidence="確認済み", source=document.name, page="p.3",
                           reason="公式の事例一覧で確認"), ADMIN)
    curator.set(SetRequest("cases.11.aliases", add=["ふるさと子育て応援金"], reason="市の手当の名前"), ADMIN)
    # Until the index is rebuilt, it is stale for the corrected knowledge.
    assert running.knowledge.cases[11].aliases[-1] == "ふるさと子育て応援金"  # picked up without a restart
    assert index_status(settings, running.knowledge)["stale_reasons"] == ["corpus", "documents"]
    build_index(settings, running.knowledge)
    assert index_status(settings, running.knowledge)["state"] == "ready"

    answer = running.ask(QUESTION)
    citation = analogous_citation(answer)
    assert citation["confidence"] == "確認済み" and citation["as_of"] == "2026-04-01"
    official = normalize("独自利用事務の事例一覧（令和8年4月） p.3")
    assert citation["label"].startswith(official)  # the official document, not our summary
    assert "【要確認】準ずる法定事務" not in answer["answer"] and official in answer["answer"]
    top = running.classify(LOCAL_NAME)["candidates"][0]
    assert top["case"] == 11 and any("ふるさと子育て応援金" in reason for reason in top["reasons"])
    corrected = registry(capsys)
    assert corrected[5]["sources"][0] == "事例一覧_令和8年4月.md p.3（2026-04-01時点）"
    assert corrected[5]["as_of"] == "2026-04-01" and "ふるさと子育て応援金" in corrected[11]["aliases"]
    assert {k: v for k, v in corrected.items() if k not in (5, 11)} == {
        k: v for k, v in before_registry.items() if k not in (5, 11)}

    # Revert: everything as before (the index again after a rebuild).
    curator.revert([row["id"] for row in curator.log()], "確認をやり直す", ADMIN)
    build_index(settings, running.knowledge)
    assert registry(capsys) == before_registry
    assert analogous_citation(running.ask(QUESTION)) == before_citation
    assert running.classify(LOCAL_NAME)["no_fit"] is True


def test_the_knowledge_command_rebuilds_the_index_after_a_change(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "build", "--json"]) == 0
    capsys.readouterr()
    assert main(["knowledge", "set", "cases.11.aliases", "--add", "ふるさと子育て応援金", "--reason", "市の手当の名前",
                 "--user", "kanri", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["correction"]["user"] == "kanri" and result["index"]["chunks"] > 0
    assert main(["index", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "ready"
    assert main(["knowledge", "revert", str(result["correction"]["id"]), "--reason", "取り消し", "--no-index"]) == 0
    capsys.readouterr()
    assert main(["index", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "stale" and status["stale_reasons"] == ["corpus"]
