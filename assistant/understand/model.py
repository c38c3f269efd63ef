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
from scipy import sparse
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from assistant.advise.matching import fold
from assistant.understand.data import LabelSet, Utterance

MODEL_FORMAT = 5
NONE = "none"
INTENT_THRESHOLD = 0.5
CHANGE_THRESHOLD = 0.5


def fold_for_reader(text: str) -> str:
    return fold(text)


def word_tokens(text: str) -> list[str]:
    from assistant.index.tokenizer import get_tokenizer

    return get_tokenizer().words(text)


def _vectorizers() -> list[TfidfVectorizer]:
    """Character n-grams (robust to typos and kana/kanji variants) and Sudachi words and word pairs."""
    return [
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), preprocessor=fold_for_reader,
                        sublinear_tf=True, min_df=2, max_features=60_000, dtype=np.float32),
        TfidfVectorizer(tokenizer=word_tokens, preprocessor=fold_for_reader, token_pattern=None,
                        lowercase=False, ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                        max_features=40_000, dtype=np.float32),
    ]


# A linear SVM per label: chosen over logistic regression by cross-validation on the utterances (more exact label
# sets, and some thirty times faster to train). Scores are the logistic of the margin, so 0.5 is the margin 0.
SVM_C = 0.5


def _linear() -> LinearSVC:
    return LinearSVC(C=SVM_C, class_weight="balanced", random_state=0, max_iter=5000)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


@dataclass(frozen=True)
class LinearHead:
    """A trained label group reduced to its weights: one sparse product gives every class's margin."""

    classes: tuple
    weights: np.ndarray  # (features, classes), float32, contiguous: the sparse product needs no copy
    bias: np.ndarray  # (classes,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.ascontiguousarray(self.weights, dtype=np.float32))

    def scores(self, matrix: object) -> np.ndarray:
        """One score in (0, 1) per row and class: the logistic of the margin."""
        margins = np.asarray(matrix @ self.weights) + self.bias  # type: ignore[operator]
        return _sigmoid(margins)

    @classmethod
    def one_vs_rest(cls, classes: Sequence[str], model: OneVsRestClassifier) -> "LinearHead":
        weights, bias = [], []
        for estimator in model.estimators_:
            if hasattr(estimator, "coef_"):
                weights.append(estimator.coef_.ravel())
                bias.append(float(estimator.intercept_[0]))
            else:  # a label constant in the data: a fixed, decisive margin
                weights.append(np.zeros(model.n_features_in_))
                bias.append(10.0 if estimator.predict_proba(np.zeros((1, 1)))[0][-1] > 0.5 else -10.0)
        return cls(tuple(classes), np.asarray(weights, dtype=np.float32).T, np.asarray(bias, dtype=np.float32))

    @classmethod
    def single(cls, model: LinearSVC | DummyClassifier, features: int) -> "LinearHead":
        classes = tuple(model.classes_.tolist())
        if isinstance(model, DummyClassifier):
            bias = np.where(np.asarray(classes) == model.classes_[np.argmax(model.class_prior_)], 10.0, -10.0)
            return cls(classes, np.zeros((features, len(classes)), dtype=np.float32), bias.astype(np.float32))
        coef, intercept = model.coef_, model.intercept_
        if len(classes) == 2:  # one margin for the second class; the first is its negative
            coef, intercept = np.vstack([-coef[0], coef[0]]), np.array([-intercept[0], intercept[0]])
        return cls(classes, np.asarray(coef, dtype=np.float32).T, np.asarray(intercept, dtype=np.float32))


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
    vectorizers: list[TfidfVectorizer]
    intents: LinearHead
    changes: LinearHead
    singles: dict[str, LinearHead] = field(default_factory=dict)
    format: int = MODEL_FORMAT

    def features(self, texts: Sequence[str]) -> object:
        return sparse.hstack([v.transform(texts) for v in self.vectorizers], format="csr")

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        matrix = self.features(list(texts))
        intents = self.intents.scores(matrix)
        changes = self.changes.scores(matrix)
        singles = {name: (head.classes, head.scores(matrix)) for name, head in self.singles.items()}
        out = []
        for row in range(matrix.shape[0]):  # type: ignore[attr-defined]
            def best(name: str) -> tuple[str, float]:
                classes, proba = singles[name]
                index = int(np.argmax(proba[row]))
                return str(classes[index]), float(proba[row][index])

            classes, proba = singles["unpromulgated"]
            unpromulgated = float(proba[row][classes.index(True)]) if True in classes else 0.0
            out.append(
                Prediction(
                    intents=_ranked(self.intents.classes, intents[row]),
                    changes=_ranked(self.changes.classes, changes[row]),
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
    vectorizers = _vectorizers()
    matrix = sparse.hstack([v.fit_transform(texts) for v in vectorizers], format="csr")
    features = matrix.shape[1]
    intent_classes, change_classes = list(labels.intents), list(labels.changes)
    intent_targets = MultiLabelBinarizer(classes=intent_classes).fit_transform([u.intents for u in utterances])
    change_targets = MultiLabelBinarizer(classes=change_classes).fit_transform([u.changes for u in utterances])
    intents = LinearHead.one_vs_rest(intent_classes, OneVsRestClassifier(_linear()).fit(matrix, intent_targets))
    changes = LinearHead.one_vs_rest(change_classes, OneVsRestClassifier(_linear()).fit(matrix, change_targets))
    singles = {}
    for name, target in _targets(utterances).items():
        # A label group that never varies in the data gets a constant predictor.
        model = _linear() if len(set(target)) > 1 else DummyClassifier(strategy="most_frequent")
        singles[name] = LinearHead.single(model.fit(matrix, target), features)
    return ReaderModel(labels, fingerprint, vectorizers, intents, changes, singles)


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
