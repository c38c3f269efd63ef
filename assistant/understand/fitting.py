"""Training the reader with scikit-learn: TF-IDF vectorizers and linear SVMs, reduced to a `ReaderModel`.

Only `assistant reader train`, a first start without a cached model and cross-validation import this
module (and scikit-learn); answering uses the arrays it produces.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

from assistant.understand.data import LabelSet, Utterance
from assistant.understand.features import TextFeatures, fold_for_reader, word_tokens
from assistant.understand.model import NONE, LinearHead, ReaderModel

# A linear SVM per label: chosen over logistic regression by cross-validation on the utterances (more exact label
# sets, and some thirty times faster to train). Scores are the logistic of the margin, so 0.5 is the margin 0.
SVM_C = 0.5


def vectorizers() -> list[TfidfVectorizer]:
    """Character n-grams (robust to typos and kana/kanji variants) and Sudachi words and word pairs."""
    return [
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), preprocessor=fold_for_reader,
                        sublinear_tf=True, min_df=2, max_features=60_000, dtype=np.float32),
        TfidfVectorizer(tokenizer=word_tokens, preprocessor=fold_for_reader, token_pattern=None,
                        lowercase=False, ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                        max_features=40_000, dtype=np.float32),
    ]


def linear() -> LinearSVC:
    return LinearSVC(C=SVM_C, class_weight="balanced", random_state=0, max_iter=5000)


def one_vs_rest_head(classes: Sequence[str], model: OneVsRestClassifier) -> LinearHead:
    weights, bias = [], []
    for estimator in model.estimators_:
        if hasattr(estimator, "coef_"):
            weights.append(estimator.coef_.ravel())
            bias.append(float(estimator.intercept_[0]))
        else:  # a label constant in the data: a fixed, decisive margin
            weights.append(np.zeros(model.n_features_in_))
            bias.append(10.0 if estimator.predict_proba(np.zeros((1, 1)))[0][-1] > 0.5 else -10.0)
    return LinearHead(tuple(classes), np.asarray(weights, dtype=np.float32).T, np.asarray(bias, dtype=np.float32))


def single_head(model: LinearSVC | DummyClassifier, features: int) -> LinearHead:
    classes = tuple(model.classes_.tolist())
    if isinstance(model, DummyClassifier):
        bias = np.where(np.asarray(classes) == model.classes_[np.argmax(model.class_prior_)], 10.0, -10.0)
        return LinearHead(classes, np.zeros((features, len(classes)), dtype=np.float32), bias.astype(np.float32))
    coef, intercept = model.coef_, model.intercept_
    if len(classes) == 2:  # one margin for the second class; the first is its negative
        coef, intercept = np.vstack([-coef[0], coef[0]]), np.array([-intercept[0], intercept[0]])
    return LinearHead(classes, np.asarray(coef, dtype=np.float32).T, np.asarray(intercept, dtype=np.float32))


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
    fitted = vectorizers()
    matrix = sparse.hstack([v.fit_transform(texts) for v in fitted], format="csr")
    features = matrix.shape[1]
    intent_classes, change_classes = list(labels.intents), list(labels.changes)
    intent_targets = MultiLabelBinarizer(classes=intent_classes).fit_transform([u.intents for u in utterances])
    change_targets = MultiLabelBinarizer(classes=change_classes).fit_transform([u.changes for u in utterances])
    intents = one_vs_rest_head(intent_classes, OneVsRestClassifier(linear()).fit(matrix, intent_targets))
    changes = one_vs_rest_head(change_classes, OneVsRestClassifier(linear()).fit(matrix, change_targets))
    singles = {}
    for name, target in _targets(utterances).items():
        # A label group that never varies in the data gets a constant predictor.
        model = linear() if len(set(target)) > 1 else DummyClassifier(strategy="most_frequent")
        singles[name] = single_head(model.fit(matrix, target), features)
    return ReaderModel(labels, fingerprint, [TextFeatures.from_vectorizer(v) for v in fitted], intents, changes, singles)
