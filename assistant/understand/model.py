"""The learned reader at answer time: TF-IDF features and one linear head per label group.

Trained reproducibly from corpus/reader/*.jsonl (fixed seed, deterministic solvers) by `assistant reader train`
or on first use (assistant/understand/fitting.py), and cached under ASSISTANT_HOME keyed by the training data's
fingerprint. Answering needs numpy only; the model is stored as plain arrays (no pickle).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.understand.data import LabelSet
from assistant.understand.features import SparseRows, TextFeatures

MODEL_FORMAT = 6
NONE = "none"
INTENT_THRESHOLD = 0.5
CHANGE_THRESHOLD = 0.5
SINGLE_HEADS = ("existing", "polarity", "asker", "unpromulgated")


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
        """One score in (0, 1) per row and class: the logistic of the margin (rows as SparseRows or scipy's)."""
        product = matrix.dot(self.weights) if isinstance(matrix, SparseRows) else matrix @ self.weights  # type: ignore[operator]
        return _sigmoid(np.asarray(product) + self.bias)


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
    features_of: list[TextFeatures]
    intents: LinearHead
    changes: LinearHead
    singles: dict[str, LinearHead] = field(default_factory=dict)
    format: int = MODEL_FORMAT

    def features(self, texts: Sequence[str]) -> SparseRows:
        return SparseRows.side_by_side([f.transform(texts) for f in self.features_of])

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


def _head_arrays(head: LinearHead, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}classes": np.array(json.dumps(list(head.classes), ensure_ascii=False)),
            f"{prefix}weights": head.weights, f"{prefix}bias": head.bias}


def _head(arrays: object, prefix: str) -> LinearHead:
    classes = tuple(json.loads(str(arrays[f"{prefix}classes"])))  # type: ignore[index]
    return LinearHead(classes, arrays[f"{prefix}weights"], arrays[f"{prefix}bias"])  # type: ignore[index]


def save(model: ReaderModel, path: Path) -> None:
    """Write the model as plain arrays (atomically: a reader never sees half a file)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(model.format),
        "fingerprint": np.array(model.fingerprint),
        "labels": np.array(json.dumps(dataclasses.asdict(model.labels), ensure_ascii=False)),
        "feature_sets": np.array(len(model.features_of)),
    }
    for number, features in enumerate(model.features_of):
        arrays |= features.to_arrays(f"features{number}_")
    arrays |= _head_arrays(model.intents, "intents_") | _head_arrays(model.changes, "changes_")
    for name, head in model.singles.items():
        arrays |= _head_arrays(head, f"single_{name}_")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> ReaderModel | None:
    """The cached model, or None when it is missing, damaged or of another format."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if int(arrays["format"]) != MODEL_FORMAT:
                return None
            features = [TextFeatures.from_arrays(arrays, f"features{n}_") for n in range(int(arrays["feature_sets"]))]
            singles = {name: _head(arrays, f"single_{name}_") for name in SINGLE_HEADS}
            return ReaderModel(
                LabelSet(**json.loads(str(arrays["labels"]))), str(arrays["fingerprint"]), features,
                _head(arrays, "intents_"), _head(arrays, "changes_"), singles,
            )
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None  # a damaged or foreign cache file is rebuilt, never trusted


def replace_fingerprint(model: ReaderModel, fingerprint: str) -> ReaderModel:
    return dataclasses.replace(model, fingerprint=fingerprint)
