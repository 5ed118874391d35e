"""The built-in measures (the table of :mod:`gradmeta.evaluation.measures`), equal to scikit-learn's bit for
bit: ``roc_curve`` + ``auc``, ``average_precision_score``, ``accuracy_score``, and FPR at 95% TPR in both
conventions."""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid

from gradmeta.evaluation.measures import Counts, Ranking, register_measure


def average_precision(c: Counts) -> float:
    """``average_precision_score``: the step integral of precision over recall."""
    precision = np.r_[np.flip(c.tps / (c.tps + c.fps)), 1.0]
    recall = np.r_[np.flip(c.tps / c.tps[-1]), 0.0]
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def fpr_at_95(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(fpr[np.searchsorted(tpr, 0.95, side="left")])


@register_measure("accuracy", "share of rows classified right at the threshold chosen on meta-train (nan without one)")
def accuracy(r: Ranking) -> float:
    return float("nan") if r.threshold is None else float(np.mean((r.scores >= r.threshold) == (r.target == 1)))


@register_measure("auroc", "area under the ROC curve (the same whichever class is positive)")
def auroc(r: Ranking) -> float:
    fpr, tpr = r.roc
    return float(trapezoid(tpr, fpr))


@register_measure("aupr_wrong_positive", "average precision, wrong / unknown positive (AUPR-Out)")
def aupr_wrong_positive(r: Ranking) -> float:
    return average_precision(r.wrong_positive)


@register_measure("aupr_correct_positive", "average precision, correct positive (AUPR-In)")
def aupr_correct_positive(r: Ranking) -> float:
    return average_precision(r.correct_positive)


@register_measure("fpr_at_95tpr_correct_positive", "wrong rows accepted where 95% of correct rows are")
def fpr_at_95tpr_correct_positive(r: Ranking) -> float:
    return fpr_at_95(*r.roc)


@register_measure("fpr_at_95tpr_wrong_positive", "correct rows rejected where 95% of wrong rows are (OpenOOD's)")
def fpr_at_95tpr_wrong_positive(r: Ranking) -> float:
    return fpr_at_95(*r.roc_wrong_positive)
