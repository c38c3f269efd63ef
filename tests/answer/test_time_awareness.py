"""An older source read today: the answer shows what changed since, and newer sources lead."""

from pathlib import Path

from assistant.index.store import build_index
from assistant.ingest.docstore import DocumentStore
from assistant.knowledge import load_knowledge
from assistant.service import Assistant


def test_old_document_gets_a_change_note(settings, tmp_path: Path) -> None:  # noqa: ANN001
    old = tmp_path / "2017-town-page.md"
    old.write_text(
        "# 独自利用事務について\n## 届出\n本町は番号法第19条第8号及び委員会規則第4条第1項に基づき、もみじ手当の情報連携の届出を行いました。\n",
        encoding="utf-8",
    )
    DocumentStore(settings.documents_dir).ingest(old, kind="other", as_of="2017-04-14", title="町のページ（2017年）")
    build_index(settings, load_knowledge(settings.corpus_dir))
    assistant = Assistant(settings)
    result = assistant.ask("もみじ手当の情報連携の届出は番号法第19条第8号に基づくのですか")
    old_citations = [c for c in result["citations"] if c["as_of"] == "2017-04-14"]
    assert old_citations, "the ingested 2017 page should be retrieved and cited"
    assert "時点の違いに注意" in result["answer"]
    assert "第19条第9号" in result["answer"]
    assert any(c["source_id"].startswith("change-") for c in result["citations"])
