"""Links that are not the publisher's page are named by the kind of site they point at (corpus/source-hosts.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assistant.config import DEFAULT_CORPUS_DIR
from assistant.knowledge.hosts import link_label, load_host_kinds


def _sources() -> dict[str, dict]:
    entries: dict[str, dict] = {}
    for path in sorted(DEFAULT_CORPUS_DIR.glob("sources*.yaml")):
        entries |= {s["id"]: s for s in yaml.safe_load(path.read_text(encoding="utf-8"))}
    return entries


def test_the_corpus_sources_get_the_label_of_their_host() -> None:
    sources = _sources()
    label = lambda sid: link_label(sources[sid]["url"], DEFAULT_CORPUS_DIR)  # noqa: E731
    assert "キャッシュ" in label("ST8") and "キャッシュ" in label("M-IWATE")  # *.cache.yimg.jp
    assert "転載" in label("S12") and "転載" in label("S11") and "転載" in label("ST1")
    assert "法令の表示サイト" in label("S16") and "法令の表示サイト" in label("S31")
    assert label("SEED") is None and label("S6") is None, "publishers' own pages carry no label"
    labelled = {sid for sid in sources if label(sid)}
    assert len(labelled) >= 20


def test_a_malformed_hosts_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "source-hosts.yaml").write_text("- kind: cache\n  label: キャッシュ\n", encoding="utf-8")
    with pytest.raises(ValueError, match="source-hosts.yaml"):
        load_host_kinds(tmp_path)
    assert load_host_kinds(tmp_path / "none") == ()
    assert link_label("https://expydoc.com/x", tmp_path / "none") is None
