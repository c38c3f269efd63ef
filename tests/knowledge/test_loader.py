import re
import shutil
from pathlib import Path

import pytest
import yaml

from assistant.config import DEFAULT_CORPUS_DIR
from assistant.knowledge import CorpusError, load_knowledge
from assistant.knowledge.chunks import corpus_chunks


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(DEFAULT_CORPUS_DIR)


def test_all_35_cases_with_seed_names(knowledge) -> None:
    assert sorted(knowledge.cases) == list(range(1, 36))
    assert knowledge.cases[3].name == knowledge.cases[4].name
    assert knowledge.cases[3].seed_label == "(3)(4)"
    seed = (Path(__file__).resolve().parents[3] / "shared" / "seed" / "ppc-dokujiriyoujimu-page.txt")
    if seed.is_file():
        text = seed.read_text(encoding="utf-8")
        for case in knowledge.cases.values():
            assert case.name in text, case.id


def test_corpus_size(knowledge) -> None:
    assert len(knowledge.qa) >= 60
    assert set(knowledge.notifications) == {"new", "change", "discontinue", "replace"}
    phases = {item.phase for item in knowledge.procedure.checklist}
    assert phases == {"preparation", "filing", "review", "requirement"}
    assert len(knowledge.guidance) >= 6


def test_every_chunk_carries_sources_as_of_and_confidence(knowledge) -> None:
    chunks = corpus_chunks(knowledge)
    assert len({c.source_id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert chunk.sources, chunk.source_id
        assert all(s in knowledge.sources for s in chunk.sources), chunk.source_id
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", chunk.as_of), chunk.source_id
        assert chunk.confidence in {"確認済み", "要確認"}
        if "【要確認】" in chunk.text:
            assert chunk.confidence == "要確認", chunk.source_id


def _copy_corpus(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(DEFAULT_CORPUS_DIR, target)
    return target


def _edit_yaml(path: Path, edit) -> None:  # noqa: ANN001
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_malformed_entry_names_file_entry_and_field(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "cases.yaml", lambda d: d[4].update(confidence="たぶん"))
    with pytest.raises(CorpusError) as error:
        load_knowledge(root)
    message = str(error.value)
    assert "cases.yaml" in message and "id=5" in message and "confidence" in message


def test_bad_date_unknown_source_and_missing_case(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "qa.yaml", lambda d: d[0].update(as_of="令和6年"))
    with pytest.raises(CorpusError, match=r"qa.yaml.*qa-001.*as_of"):
        load_knowledge(root)
    root = _copy_corpus(tmp_path / "b")
    _edit_yaml(root / "qa.yaml", lambda d: d[0].update(sources=["NO-SUCH-SOURCE"]))
    with pytest.raises(CorpusError, match="NO-SUCH-SOURCE"):
        load_knowledge(root)
    root = _copy_corpus(tmp_path / "c")
    _edit_yaml(root / "cases.yaml", lambda d: d.pop(9))
    with pytest.raises(CorpusError, match=r"case ids missing: \[10\]"):
        load_knowledge(root)


def test_broken_yaml_and_front_matter(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    (root / "routing.yaml").write_text("- id: [unclosed\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="routing.yaml"):
        load_knowledge(root)
    root = _copy_corpus(tmp_path / "b")
    page = next((root / "guidance").glob("*.md"))
    page.write_text("no front matter", encoding="utf-8")
    with pytest.raises(CorpusError, match=page.name):
        load_knowledge(root)
