"""Building the reader model (train, cache, load) and measuring it by cross-validation."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.understand import model as reader_model
from assistant.understand.data import LabelSet, Utterance, data_fingerprint, load_labels, load_utterances

CV_FOLDS = 5
CV_SEED = 0


def cache_path(cache_dir: Path, fingerprint: str) -> Path:
    return cache_dir / f"reader-{reader_model.MODEL_FORMAT}-{fingerprint}.npz"


def build_model(corpus_dir: Path, cache_dir: Path, *, progress: Callable[[str], None] | None = None,
                force: bool = False) -> reader_model.ReaderModel:
    """The cached model for the current training data, trained first when there is none."""
    fingerprint = data_fingerprint(corpus_dir)
    path = cache_path(cache_dir, fingerprint)
    if not force:
        cached = reader_model.load(path) if path.is_file() else None
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
    if progress:
        progress("文の読み取りモデルを学習しています")
    labels = load_labels(corpus_dir)
    from assistant.understand.fitting import train

    trained = train(load_utterances(corpus_dir, labels), labels, fingerprint)
    reader_model.save(trained, path)
    for stale in [*cache_dir.glob("reader-*.npz"), *cache_dir.glob("reader-*.joblib")]:
        if stale != path:
            stale.unlink(missing_ok=True)
    return trained


@dataclass
class LabelScore:
    label: str
    support: int
    precision: float
    recall: float
    f1: float


@dataclass
class CrossValidation:
    folds: int
    utterances: int
    seconds: float
    intent_exact: float  # the chosen intent set equals the labelled set
    intent_primary: float  # the top intent is one of the labelled intents
    change_exact: float
    group_accuracy: dict[str, float]
    intents: list[LabelScore]
    changes: list[LabelScore]
    errors: list[dict[str, object]] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"交差検証 {self.folds} 分割、{self.utterances} 文、{self.seconds:.1f} 秒",
            f"意図の集合の完全一致 {self.intent_exact:.3f}、第一意図の正解率 {self.intent_primary:.3f}、変更点の集合の完全一致 {self.change_exact:.3f}",
            "、".join(f"{name} {value:.3f}" for name, value in self.group_accuracy.items()),
            "",
            f"{'label':<20} {'n':>5} {'P':>6} {'R':>6} {'F1':>6}",
        ]
        for score in [*self.intents, *self.changes]:
            lines.append(f"{score.label:<20} {score.support:>5} {score.precision:>6.3f} {score.recall:>6.3f} {score.f1:>6.3f}")
        return "\n".join(lines)


def _scores(names: Sequence[str], gold: list[set[str]], predicted: list[set[str]]) -> list[LabelScore]:
    out = []
    for name in names:
        tp = sum(1 for g, p in zip(gold, predicted) if name in g and name in p)
        fp = sum(1 for g, p in zip(gold, predicted) if name not in g and name in p)
        fn = sum(1 for g, p in zip(gold, predicted) if name in g and name not in p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(LabelScore(name, tp + fn, precision, recall, f1))
    return out


def cross_validate(utterances: Sequence[Utterance], labels: LabelSet, folds: int = CV_FOLDS) -> CrossValidation:
    from sklearn.model_selection import KFold

    from assistant.understand.fitting import train

    started = time.perf_counter()
    items = list(utterances)
    predictions: list[reader_model.Prediction | None] = [None] * len(items)
    splitter = KFold(n_splits=folds, shuffle=True, random_state=CV_SEED)
    for train_index, test_index in splitter.split(np.arange(len(items))):
        fitted = train([items[i] for i in train_index], labels)
        for index, prediction in zip(test_index, fitted.predict_many([items[i].text for i in test_index])):
            predictions[index] = prediction
    gold_intents = [set(u.intents) for u in items]
    gold_changes = [set(u.changes) for u in items]
    chosen_intents = [set(p.chosen_intents()) for p in predictions]  # type: ignore[union-attr]
    chosen_changes = [set(p.chosen_changes()) for p in predictions]  # type: ignore[union-attr]
    groups = {
        "existing": [(u.existing or reader_model.NONE, p.existing[0]) for u, p in zip(items, predictions)],
        "polarity": [(u.polarity or reader_model.NONE, p.polarity[0]) for u, p in zip(items, predictions)],
        "asker": [(u.asker, p.asker[0]) for u, p in zip(items, predictions)],
        "unpromulgated": [(u.unpromulgated, p.unpromulgated >= 0.5) for u, p in zip(items, predictions)],
    }
    errors = []
    for u, p, gi, pi, gc, pc in zip(items, predictions, gold_intents, chosen_intents, gold_changes, chosen_changes):
        wrong = {name: (gold, got) for name, (gold, got) in
                 {"intents": (sorted(gi), sorted(pi)), "changes": (sorted(gc), sorted(pc)),
                  "existing": (u.existing, None if p.existing[0] == reader_model.NONE else p.existing[0])}.items()
                 if gold != got}
        if wrong:
            errors.append({"text": u.text, "voice": u.voice, **{k: {"gold": g, "got": w} for k, (g, w) in wrong.items()}})
    return CrossValidation(
        folds=folds,
        utterances=len(items),
        seconds=time.perf_counter() - started,
        intent_exact=float(np.mean([g == p for g, p in zip(gold_intents, chosen_intents)])),
        intent_primary=float(np.mean([p.intents[0][0] in g for g, p in zip(gold_intents, predictions)])),  # type: ignore[union-attr]
        change_exact=float(np.mean([g == p for g, p in zip(gold_changes, chosen_changes)])),
        group_accuracy={name: float(np.mean([a == b for a, b in pairs])) for name, pairs in groups.items()},
        intents=_scores(list(labels.intents), gold_intents, chosen_intents),
        changes=_scores(list(labels.changes), gold_changes, chosen_changes),
        errors=errors,
    )


def error_summary(report: CrossValidation, limit: int = 15) -> str:
    """Which confusions are most frequent, with a few examples each (for the error analysis)."""
    confusions: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for error in report.errors:
        for group in ("intents", "changes", "existing"):
            if group not in error:
                continue
            gold, got = error[group]["gold"], error[group]["got"]  # type: ignore[index]
            gold_set = set(gold) if isinstance(gold, list) else {str(gold)}
            got_set = set(got) if isinstance(got, list) else {str(got)}
            for missed in gold_set - got_set:
                key = f"{group}: 見落とし {missed}"
                confusions[key] += 1
                examples.setdefault(key, []).append(str(error["text"])[:80])
            for extra in got_set - gold_set:
                key = f"{group}: 誤検出 {extra}"
                confusions[key] += 1
                examples.setdefault(key, []).append(str(error["text"])[:80])
    lines = []
    for key, count in confusions.most_common(limit):
        lines.append(f"- {key}: {count} 件（例: {' ／ '.join(examples[key][:2])}）")
    return "\n".join(lines)
