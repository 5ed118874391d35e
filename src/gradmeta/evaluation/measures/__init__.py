"""The measures of meta classification: one sort of the scores (:class:`Ranking`) that every measure
reads, and a registry (:func:`register_measure`), so a new measure is one file in this package (imported
with it) and its test. The built-in measures are in :mod:`.standard`.

Scores are "higher = more likely correct"; the target is 1 for a correct prediction and 0 for a
wrong one (every image of an unknown concept is wrong). The values are scikit-learn's
(``roc_curve`` with its default ``drop_intermediate``, ``auc``, ``average_precision_score``,
``accuracy_score``), computed from one sort of the scores instead of four validated calls:
``tests/test_evaluation.py`` checks them equal, bit for bit, on tied and untied scores.

| key | meaning |
|---|---|
| ``accuracy`` | share of meta-test rows classified right with the threshold chosen on meta-train |
| ``auroc`` | area under the ROC curve (``roc_curve`` + ``auc``; the same whichever class is positive) |
| ``aupr_wrong_positive`` | average precision with wrong / unknown as the positive class (score negated): AUPR-Out |
| ``aupr_correct_positive`` | average precision with correct as the positive class: AUPR-In |
| ``fpr_at_95tpr_correct_positive`` | share of wrong rows accepted at the first threshold that accepts 95% of |
| | correct rows (in-distribution positive: Hendrycks & Gimpel, ODIN) |
| ``fpr_at_95tpr_wrong_positive`` | share of correct rows rejected at the first threshold that rejects 95% of |
| | wrong rows (OOD positive: OpenOOD, pytorch-ood's ``OODMetrics``) |
"""

from __future__ import annotations

import functools
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import registered_name


@dataclass(frozen=True)
class Counts:
    """Positives and negatives accepted at each distinct threshold, in the order the threshold admits
    more rows: what scikit-learn's ``confusion_matrix_at_thresholds`` returns as ``tps`` and ``fps``
    (float64 counts)."""

    tps: np.ndarray
    fps: np.ndarray


def counts(group_positive: np.ndarray, group_size: np.ndarray) -> Counts:
    """Cumulative counts over groups of tied scores, given in the order they are admitted (highest
    score first for the score itself, lowest first for its negation)."""
    tps = np.cumsum(group_positive).astype(np.float64)
    return Counts(tps, np.cumsum(group_size).astype(np.float64) - tps)


def roc(c: Counts) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) as ``roc_curve`` gives them: collinear intermediate points dropped, (0, 0) first."""
    tps, fps = c.tps, c.fps
    if len(fps) > 2:
        keep = np.nonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        tps, fps = tps[keep], fps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return fps / fps[-1], tps / tps[-1]


class Ranking:
    """One sort of ``scores`` (n,) float64 against ``target`` (n,) int (1 = correct / in-distribution), from which
    every measure reads: the cumulative counts with correct as the positive class (``correct_positive``:
    accepting scores >= t, from the highest t down) and with wrong as the positive class (``wrong_positive``:
    flagging scores <= t, from the lowest t up), their ROC curves (``roc``, ``roc_wrong_positive``: (fpr, tpr)
    as scikit-learn's ``roc_curve`` gives them), and the ``threshold`` (None: no accuracy)."""

    def __init__(self, scores: np.ndarray, target: np.ndarray, threshold: float | None):
        self.scores, self.target, self.threshold = scores, target, threshold
        _, group, size = np.unique(scores, return_inverse=True, return_counts=True)  # the one sort; ascending
        correct = np.bincount(group[target == 1], minlength=len(size))
        self.correct_positive = counts(correct[::-1], size[::-1])
        self.wrong_positive = counts(size - correct, size)

    @functools.cached_property
    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        return roc(self.correct_positive)

    @functools.cached_property
    def roc_wrong_positive(self) -> tuple[np.ndarray, np.ndarray]:
        return roc(self.wrong_positive)


@dataclass(frozen=True)
class Measure:
    """A registered measure: its name (a column of measures.csv, ``<name>_mean``/``_std``), what it means
    (with its positive class), and ``compute(ranking) -> float``."""

    name: str
    meaning: str
    compute: Callable[[Ranking], float]


MEASURE_REGISTRY: dict[str, Measure] = {}


def register_measure(name: str, meaning: str) -> Callable[[Callable[[Ranking], float]], Callable[[Ranking], float]]:
    """Decorator: register ``compute(ranking) -> float`` as the measure ``name`` (say its positive class in
    ``meaning``). Another function under a taken name is an error; the same one again a no-op."""
    registered_name("measure", name, None, None)

    def register(compute: Callable[[Ranking], float]) -> Callable[[Ranking], float]:
        registered_name("measure", name, getattr(MEASURE_REGISTRY.get(name), "compute", None), compute)
        MEASURE_REGISTRY[name] = Measure(name, meaning, compute)
        return compute

    return register


def measure_names() -> tuple[str, ...]:
    """Every registered measure, the built-in ones first, in registration order."""
    return tuple(MEASURE_REGISTRY)


def measure_all(scores: np.ndarray, target: np.ndarray, threshold: float | None = None,
                where: str = "test set") -> dict[str, float]:
    """Every registered measure of ``scores`` (n,) against ``target`` (n,) (1 = correct, or in-distribution),
    in :func:`measure_names`' order; accuracy at ``threshold`` (scores >= threshold are predicted 1; nan
    without a threshold, e.g. for a detector's raw scores)."""
    scores = np.asarray(scores, dtype=np.float64)
    raw = np.asarray(target)
    if raw.dtype.kind not in "biuf" or not np.isin(raw, (0, 1)).all():
        seen = np.unique(raw)[:5] if raw.dtype.kind in "biufUSO" else raw.dtype
        raise GradmetaError(f"{where}: target must be binary, 1 = in-distribution / correct and 0 = out-of-distribution "
                            f"/ wrong, got values {seen}")
    target = raw.astype(int)
    if len(target) == 0:
        raise GradmetaError(f"{where}: empty, nothing to evaluate")
    if target.min() == target.max():
        kind = "correct" if target[0] == 1 else "wrong"
        raise GradmetaError(f"{where}: every row is {kind}; ROC measures need both correct and wrong rows")
    if not np.isfinite(scores).all():
        raise GradmetaError(f"{where}: scores must be finite")
    ranking = Ranking(scores, target, threshold)
    return {name: float(m.compute(ranking)) for name, m in MEASURE_REGISTRY.items()}


for _info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
    import_module(f"{__name__}.{_info.name}")  # a measure's file registers it on import
