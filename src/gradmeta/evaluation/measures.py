"""Every measure of meta classification, and its convention, in one place.

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

from dataclasses import dataclass

import numpy as np
from scipy.integrate import trapezoid

from gradmeta.core.errors import GradmetaError

MEASURES = ("accuracy", "auroc", "aupr_wrong_positive", "aupr_correct_positive", "fpr_at_95tpr_correct_positive",
            "fpr_at_95tpr_wrong_positive")


@dataclass(frozen=True)
class _Counts:
    """Positives and negatives accepted at each distinct threshold, in the order the threshold admits
    more rows: what scikit-learn's ``confusion_matrix_at_thresholds`` returns as ``tps`` and ``fps``
    (float64 counts)."""

    tps: np.ndarray
    fps: np.ndarray


def _counts(group_positive: np.ndarray, group_size: np.ndarray) -> _Counts:
    """Cumulative counts over groups of tied scores, given in the order they are admitted (highest
    score first for the score itself, lowest first for its negation)."""
    tps = np.cumsum(group_positive).astype(np.float64)
    return _Counts(tps, np.cumsum(group_size).astype(np.float64) - tps)


def _roc(c: _Counts) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) as ``roc_curve`` gives them: collinear intermediate points dropped, (0, 0) first."""
    tps, fps = c.tps, c.fps
    if len(fps) > 2:
        keep = np.nonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        tps, fps = tps[keep], fps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return fps / fps[-1], tps / tps[-1]


def _average_precision(c: _Counts) -> float:
    """``average_precision_score``: the step integral of precision over recall."""
    precision = np.r_[np.flip(c.tps / (c.tps + c.fps)), 1.0]
    recall = np.r_[np.flip(c.tps / c.tps[-1]), 0.0]
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def _fpr_at_95(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(fpr[np.searchsorted(tpr, 0.95, side="left")])


def measure_all(scores: np.ndarray, target: np.ndarray, threshold: float | None = None,
                where: str = "test set") -> dict[str, float]:
    """Every measure of ``scores`` (n,) against ``target`` (n,) (1 = correct, or in-distribution),
    accuracy at ``threshold`` (scores >= threshold are predicted 1; nan without a threshold, e.g. for
    a detector's raw scores)."""
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
    _, group, size = np.unique(scores, return_inverse=True, return_counts=True)  # the one sort; ascending
    correct = np.bincount(group[target == 1], minlength=len(size))
    wrong = size - correct
    correct_positive = _counts(correct[::-1], size[::-1])  # accept scores >= t, from the highest t down
    wrong_positive = _counts(wrong, size)  # flag scores <= t (the negated score), from the lowest t up
    fpr, tpr = _roc(correct_positive)
    fpr_out, tpr_out = _roc(wrong_positive)
    return {
        "accuracy": float("nan") if threshold is None else float(np.mean((scores >= threshold) == (target == 1))),
        "auroc": float(trapezoid(tpr, fpr)),
        "aupr_wrong_positive": _average_precision(wrong_positive),
        "aupr_correct_positive": _average_precision(correct_positive),
        "fpr_at_95tpr_correct_positive": _fpr_at_95(fpr, tpr),
        "fpr_at_95tpr_wrong_positive": _fpr_at_95(fpr_out, tpr_out),
    }
