"""Building the reader model: reproducible, cached by data fingerprint, rebuilt when damaged; measured by CV."""

import json
import shutil
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from assistant.understand.data import ReaderDataError, load_labels, load_utterances
from assistant.understand.training import build_model, cache_path, cross_validate, error_summary
from assistant.understand.data import data_fingerprint

LINES = [
    {"text": f"{affair}はどの事例に当たりますか", "intents": ["case_fit"]}
    for affair in ("子ども医療費助成", "市営住宅の管理", "就学援助", "難病見舞金", "在宅介護手当", "奨学金の貸与")
] + [
    {"text": f"{what}ので何の届出ですか", "intents": ["notification_type"], "changes": [change], "existing": "yes"}
    for what, change in (("照会する情報を追加する", "info_added"), ("条例の号がずれた", "renumber_typo"),
                         ("事業を廃止する", "abolished"), ("住民票関係情報も照会したい", "info_added"),
                         ("規則の題名が変わる", "rename"), ("制度をやめる", "abolished"))
] + [{"text": t, "intents": ["answer"], "polarity": p} for t, p in (("はい", "yes"), ("いいえ", "no"), ("はい、そうです", "yes"),
                                                                      ("まだです", "no"), ("わかりません", "unsure"), ("不明です", "unsure"))]


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    reader = tmp_path / "corpus" / "reader"
    reader.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "corpus" / "reader" / "labels.yaml", reader / "labels.yaml")
    (reader / "small.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in LINES), encoding="utf-8")
    return tmp_path / "corpus"


def test_model_is_cached_by_fingerprint_and_retrained_when_data_change(small_corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build_model(small_corpus, cache)
    path = cache_path(cache, data_fingerprint(small_corpus))
    assert path.is_file() and first.fingerprint == data_fingerprint(small_corpus)
    stamp = path.stat().st_mtime_ns
    assert build_model(small_corpus, cache).fingerprint == first.fingerprint
    assert path.stat().st_mtime_ns == stamp  # loaded, not trained again
    extra = small_corpus / "reader" / "small.jsonl"
    extra.write_text(extra.read_text(encoding="utf-8") + "\n" + json.dumps({"text": "ありがとう", "intents": ["greeting"]}), encoding="utf-8")
    second = build_model(small_corpus, cache)
    assert second.fingerprint != first.fingerprint
    assert not path.exists()  # the stale cache is removed


def test_damaged_cache_is_rebuilt(small_corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build_model(small_corpus, cache)
    path = cache_path(cache, data_fingerprint(small_corpus))
    path.write_bytes(b"not a model")
    model = build_model(small_corpus, cache)
    assert model.predict("はい").polarity[0] == "yes"


def test_training_is_reproducible(small_corpus: Path, tmp_path: Path) -> None:
    a = build_model(small_corpus, tmp_path / "a", force=True).predict("就学援助の届出は？")
    b = build_model(small_corpus, tmp_path / "b", force=True).predict("就学援助の届出は？")
    assert a == b


def test_bad_labels_are_refused_with_file_and_line(small_corpus: Path) -> None:
    bad = small_corpus / "reader" / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "intents": ["weather"]}), encoding="utf-8")
    with pytest.raises(ReaderDataError, match=r"bad.jsonl 1行目.*weather"):
        load_utterances(small_corpus)
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReaderDataError, match="bad.jsonl 1行目"):
        load_utterances(small_corpus)


def test_cross_validation_reports_every_label(small_corpus: Path) -> None:
    labels = load_labels(small_corpus)
    report = cross_validate(load_utterances(small_corpus, labels), labels, folds=3)
    assert report.utterances == len(LINES)
    assert {s.label for s in report.intents} == set(labels.intents)
    assert 0.0 <= report.intent_exact <= 1.0 and "case_fit" in report.table()
    assert isinstance(error_summary(report), str)


def test_compiled_weights_give_the_classifiers_own_margins(small_corpus: Path) -> None:
    """The model keeps only weight matrices; they must score exactly as the trained classifiers do."""
    import numpy as np
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    from assistant.understand import fitting

    labels = load_labels(small_corpus)
    utterances = load_utterances(small_corpus, labels)
    trained = fitting.train(utterances, labels)
    texts = ["就学援助はどの事例ですか", "はい", "号がずれたので何の届出ですか"]
    matrix = trained.features(texts)
    targets = MultiLabelBinarizer(classes=list(labels.intents)).fit_transform([u.intents for u in utterances])
    full = trained.features([u.text for u in utterances])
    reference = OneVsRestClassifier(fitting.linear()).fit(full.to_scipy(), targets)
    expected = 1 / (1 + np.exp(-reference.decision_function(matrix.to_scipy())))
    scores = trained.intents.scores(matrix)
    seen = targets.any(axis=0)  # labels the small corpus has examples of
    assert np.allclose(scores[:, seen], expected[:, seen], atol=1e-5)
    assert (scores[:, ~seen] < 0.01).all()  # a label never seen in training is never chosen


def test_answer_time_features_equal_the_fitted_vectorizers(small_corpus: Path) -> None:
    """The features answering computes without scikit-learn are the fitted TF-IDF vectorizers' own."""
    import numpy as np

    from assistant.understand import fitting
    from assistant.understand.features import SparseRows, TextFeatures

    texts = [u.text for u in load_utterances(small_corpus, load_labels(small_corpus))]
    unseen = ["就学援助  はどの事例ですか？", "ＡＢＣ町の照会項目を足したい", "", "　", "はい、はい、はい"]
    for vectorizer in fitting.vectorizers():
        vectorizer.fit(texts)
        features = TextFeatures.from_vectorizer(vectorizer)
        expected, got = vectorizer.transform(texts + unseen), features.transform(texts + unseen)
        assert got.shape == expected.shape and got.nnz == expected.nnz
        assert np.allclose(got.toarray(), expected.toarray(), atol=1e-6)
        assert isinstance(got, SparseRows)
        assert np.allclose(got.to_scipy().toarray(), expected.toarray(), atol=1e-6)


def test_answering_does_not_import_scikit_learn(small_corpus: Path, tmp_path: Path) -> None:
    """Loading a cached model and predicting needs numpy only (scikit-learn costs seconds at start, scipy a
    fifth of a second)."""
    import subprocess
    import sys

    build_model(small_corpus, tmp_path / "cache")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from assistant.understand.training import build_model\n"
        f"model = build_model(Path({str(small_corpus)!r}), Path({str(tmp_path / 'cache')!r}))\n"
        "print(model.predict('就学援助はどの事例ですか').intents[0][0])\n"
        "print(any(name.split('.')[0] in ('sklearn', 'scipy') for name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    intent, imported = out.stdout.split()
    assert intent == "case_fit" and imported == "False"
