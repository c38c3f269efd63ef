"""The learned reader: TF-IDF over characters and Sudachi words, one linear classifier per label group.

Trained reproducibly from corpus/reader/*.jsonl (fixed seed, deterministic solvers) by `assistant reader train`
or on first use, and cached under ASSISTANT_HOME keyed by the training data's fingerprint.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import MultiLabelBinarizer

from assistant.advise.matching import fold
from assistant.understand.data import LabelSet, Utterance

MODEL_FORMAT = 2
NONE = "none"
INTENT_THRESHOLD = 0.5
CHANGE_THRESHOLD = 0.5


def fold_for_reader(text: str) -> str:
    return fold(text)


def word_tokens(text: str) -> list[str]:
    from assistant.index.tokenizer import get_tokenizer

    return get_tokenizer().tokens(text)


def _features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), preprocessor=fold_for_reader,
                                      sublinear_tf=True, min_df=2, max_features=60_000, dtype=np.float32)),
            ("words", TfidfVectorizer(tokenizer=word_tokens, preprocessor=fold_for_reader, token_pattern=None,
                                      lowercase=False, ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                      max_features=40_000, dtype=np.float32)),
        ]
    )


# A linear SVM per label: chosen over logistic regression by cross-validation on the utterances (more exact label
# sets, and some thirty times faster to train). Scores are the logistic of the margin, so 0.5 is the margin 0.
SVM_C = 0.5


def _linear() -> LinearSVC:
    return LinearSVC(C=SVM_C, class_weight="balanced", random_state=0, max_iter=5000)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def _scores(model: object, matrix: object) -> tuple[list, np.ndarray]:
    """(classes, one score per class and row) for a fitted classifier of one label group."""
    if isinstance(model, DummyClassifier):
        return list(model.classes_), model.predict_proba(matrix)
    margins = model.decision_function(matrix)  # type: ignore[attr-defined]
    if margins.ndim == 1:  # two classes: the margin is that of the second
        margins = np.stack([-margins, margins], axis=1)
    return list(model.classes_), _sigmoid(margins)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Prediction:
    """Raw model output for one text; turning it into a Reading is the reader's job."""

    intents: list[tuple[str, float]]  # every intent with its probability, best first
    changes: list[tuple[str, float]]
    existing: tuple[str, float]
    polarity: tuple[str, float]
    asker: tuple[str, float]
    unpromulgated: float

    def chosen_intents(self, threshold: float = INTENT_THRESHOLD) -> list[str]:
        chosen = [label for label, p in self.intents if p >= threshold]
        return chosen or [self.intents[0][0]]

    def chosen_changes(self, threshold: float = CHANGE_THRESHOLD) -> list[str]:
        return [label for label, p in self.changes if p >= threshold]


@dataclass
class ReaderModel:
    labels: LabelSet
    fingerprint: str
    features: FeatureUnion
    intent_binarizer: MultiLabelBinarizer
    intent_model: OneVsRestClassifier
    change_binarizer: MultiLabelBinarizer
    change_model: OneVsRestClassifier
    single_models: dict[str, LinearSVC | DummyClassifier] = field(default_factory=dict)
    format: int = MODEL_FORMAT

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        matrix = self.features.transform(list(texts))
        intents = _sigmoid(self.intent_model.decision_function(matrix))
        changes = _sigmoid(self.change_model.decision_function(matrix))
        singles = {name: _scores(model, matrix) for name, model in self.single_models.items()}
        out = []
        for row in range(matrix.shape[0]):
            def best(name: str) -> tuple[str, float]:
                classes, proba = singles[name]
                index = int(np.argmax(proba[row]))
                return str(classes[index]), float(proba[row][index])

            classes, proba = singles["unpromulgated"]
            unpromulgated = float(proba[row][classes.index(True)]) if True in classes else 0.0
            out.append(
                Prediction(
                    intents=_ranked(self.intent_binarizer.classes_, intents[row]),
                    changes=_ranked(self.change_binarizer.classes_, changes[row]),
                    existing=best("existing"),
                    polarity=best("polarity"),
                    asker=best("asker"),
                    unpromulgated=unpromulgated,
                )
            )
        return out

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]


def _ranked(classes: Sequence[str], proba: np.ndarray) -> list[tuple[str, float]]:
    pairs = [(str(c), float(p)) for c, p in zip(classes, proba)]
    return sorted(pairs, key=lambda pair: pair[1], reverse=True)


def _targets(utterances: Sequence[Utterance]) -> dict[str, list]:
    return {
        "existing": [u.existing or NONE for u in utterances],
        "polarity": [u.polarity or NONE for u in utterances],
        "asker": [u.asker for u in utterances],
        "unpromulgated": [bool(u.unpromulgated) for u in utterances],
    }


def train(utterances: Sequence[Utterance], labels: LabelSet, fingerprint: str = "") -> ReaderModel:
    with warnings.catch_warnings():  # a label absent from a cross-validation fold is expected there
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        return _train(utterances, labels, fingerprint)


def _train(utterances: Sequence[Utterance], labels: LabelSet, fingerprint: str) -> ReaderModel:
    texts = [u.text for u in utterances]
    features = _features()
    matrix = features.fit_transform(texts)
    intent_binarizer = MultiLabelBinarizer(classes=list(labels.intents))
    change_binarizer = MultiLabelBinarizer(classes=list(labels.changes))
    intent_model = OneVsRestClassifier(_linear()).fit(matrix, intent_binarizer.fit_transform([u.intents for u in utterances]))
    change_model = OneVsRestClassifier(_linear()).fit(matrix, change_binarizer.fit_transform([u.changes for u in utterances]))
    singles = {}
    for name, target in _targets(utterances).items():
        # A label group that never varies in the data gets a constant predictor.
        model = _linear() if len(set(target)) > 1 else DummyClassifier(strategy="most_frequent")
        singles[name] = model.fit(matrix, target)
    return ReaderModel(labels, fingerprint, features, intent_binarizer, intent_model, change_binarizer, change_model, singles)


def save(model: ReaderModel, path: Path) -> None:
    import os
    import tempfile

    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(model, tmp, compress=3)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> ReaderModel | None:
    """The cached model, or None when it is missing, damaged or of another format."""
    import joblib

    try:
        model = joblib.load(path)
    except Exception:  # a damaged or foreign cache file is rebuilt, never trusted
        return None
    if not isinstance(model, ReaderModel) or model.format != MODEL_FORMAT:
        return None
    return model


def replace_fingerprint(model: ReaderModel, fingerprint: str) -> ReaderModel:
    return dataclasses.replace(model, fingerprint=fingerprint)
