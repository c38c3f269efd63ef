import re
import shutil
from pathlib import Path

import pytest
import yaml

from assistant.config import DEFAULT_CORPUS_DIR
from assistant.knowledge import CorpusError, load_knowledge
from assistant.knowledge.chunks import corpus_chunks
from assistant.textnorm import normalize


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


# -- the schema's as_of rule and the 【要確認】 rule fail loudly on load ---------------------------------


def _load_error(root: Path) -> str:
    with pytest.raises(CorpusError) as error:
        load_knowledge(root)
    return str(error.value)


def test_entry_as_of_must_be_the_newest_dated_source(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "cases.yaml", lambda d: d[4].update(as_of="2017-06-30"))  # case 5 cites SEED (2018-07-13)
    message = _load_error(root)
    assert "cases.yaml" in message and "id=5" in message and "as_of" in message and "2018-07-13" in message


def test_a_newer_source_date_makes_its_entries_stale(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "sources.yaml", lambda d: next(s for s in d if s["id"] == "S26").update(as_of="2030-01-01"))
    message = _load_error(root)
    assert "as_of" in message and "2030-01-01" in message and "S26" in message


def test_entry_needs_a_dated_source(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "qa.yaml", lambda d: d[0].update(sources=["S14"]))  # S14 has no date
    message = _load_error(root)
    assert "qa.yaml" in message and "qa-001" in message and "sources" in message and "時点" in message


def test_source_dates_unknown_or_estimated_must_say_so(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "sources.yaml", lambda d: next(s for s in d if s["id"] == "S14").update(confidence="確認済み"))
    assert "S14" in (message := _load_error(root)) and "null" in message
    root = _copy_corpus(tmp_path / "b")
    _edit_yaml(root / "sources.yaml", lambda d: next(s for s in d if s["id"] == "S2").pop("as_of_note"))
    assert "S2" in (message := _load_error(root)) and "as_of_note" in message


def test_unconfirmed_text_in_a_confirmed_entry_fails(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "qa.yaml", lambda d: d[0].update(answer="【要確認】" + d[0]["answer"]))
    assert yaml.safe_load((root / "qa.yaml").read_text(encoding="utf-8"))[0]["confidence"] == "確認済み"
    message = _load_error(root)
    assert "qa.yaml" in message and "qa-001" in message and "answer" in message and "【要確認】" in message


def test_notification_definitions_and_examples_have_their_own_confidence(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "notifications.yaml", lambda d: d[0].update(window=d[0]["window"] + "【要確認】"))
    message = _load_error(root)
    assert "notifications.yaml" in message and "id=new" in message and "window" in message
    root = _copy_corpus(tmp_path / "b")
    _edit_yaml(root / "notifications.yaml", lambda d: d[0].update(examples_confidence="確認済み"))
    message = _load_error(root)
    assert "id=new" in message and ("examples." in message or "notes." in message)


def test_guidance_sections_follow_section_confidence(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    page = root / "guidance" / "information-linkage.md"
    text = page.read_text(encoding="utf-8")
    assert "section_confidence:\n  呼び名が設けられた時期: 要確認\n" in text
    page.write_text(text.replace("section_confidence:\n  呼び名が設けられた時期: 要確認\n", ""), encoding="utf-8")
    message = _load_error(root)
    assert "guidance/information-linkage.md" in message and "sections." in message and "【要確認】" in message
    page.write_text(text.replace("呼び名が設けられた時期: 要確認", "ない見出し: 要確認"), encoding="utf-8")
    assert "ない見出し" in _load_error(root)


def test_confirmed_case_cannot_hide_an_unconfirmed_part(tmp_path: Path) -> None:
    root = _copy_corpus(tmp_path)
    _edit_yaml(root / "cases.yaml", lambda d: d[10].update(confidence="確認済み"))  # case 11: analogous affair 要確認
    message = _load_error(root)
    assert "cases.yaml" in message and "id=11" in message and "analogous_statutory_confidence" in message


def test_split_entries_render_confirmed_and_unconfirmed_chunks(knowledge) -> None:
    chunks = {c.source_id: c for c in corpus_chunks(knowledge)}
    for code in ("new", "change", "discontinue", "replace"):
        main, examples = chunks[f"notice-{code}"], chunks[f"notice-{code}-examples"]
        assert main.confidence == "確認済み" and "【要確認】" not in main.text
        assert examples.confidence == "要確認"
        assert all(normalize(f"補足: {note}") in examples.text for note in knowledge.notifications[code].notes)
    page = next(p for p in knowledge.guidance if p.id == "information-linkage")
    by_heading = {s.heading: n for n, s in enumerate(page.sections, start=1)}
    assert chunks[f"guide-information-linkage-{by_heading['呼び名が設けられた時期']}"].confidence == "要確認"
    assert chunks[f"guide-information-linkage-{by_heading['照会と提供の手続の位置付け']}"].confidence == "確認済み"


def test_the_validated_corpus_is_cached_and_a_change_or_damage_is_noticed(tmp_path) -> None:  # noqa: ANN001
    import shutil

    from assistant.config import PROJECT_ROOT
    from assistant.knowledge import load_knowledge

    corpus, cache = tmp_path / "corpus", tmp_path / "cache"
    shutil.copytree(PROJECT_ROOT / "corpus", corpus)
    first = load_knowledge(corpus, cache_dir=cache)
    [cached] = cache.glob("knowledge-*.pickle")
    assert load_knowledge(corpus, cache_dir=cache) == first
    cached.write_bytes(b"not a pickle")  # damaged: validated again, and written again
    assert load_knowledge(corpus, cache_dir=cache) == first
    qa = corpus / "qa.yaml"
    qa.write_text(qa.read_text(encoding="utf-8").replace("個人情報保護委員会", "個人情報保護委員会（委員会）", 1), encoding="utf-8")
    changed = load_knowledge(corpus, cache_dir=cache)
    assert changed.content_hash != first.content_hash and len(list(cache.glob("knowledge-*.pickle"))) == 1
