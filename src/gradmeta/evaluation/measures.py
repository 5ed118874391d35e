"""Every measure of meta classification, and its convention, in one place.

Scores are "higher = more likely correct"; the target is 1 for a correct prediction and 0 for a
wrong one (every image of an unknown concept is wrong). All measures use scikit-learn's functions.

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

import numpy as np
from sklearn import config_context
from sklearn.metrics import accuracy_score, auc, average_precision_score, roc_curve

from gradmeta.core.errors import GradmetaError

MEASURES = ("accuracy", "auroc", "aupr_wrong_positive", "aupr_correct_positive", "fpr_at_95tpr_correct_positive",
            "fpr_at_95tpr_wrong_positive")


def measure_all(scores: np.ndarray, target: np.ndarray, threshold: float, where: str = "test set") -> dict[str, float]:
    """Every measure of ``scores`` against ``target`` (1 = correct), accuracy at ``threshold``."""
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target).astype(int)
    if len(target) == 0:
        raise GradmetaError(f"{where}: empty, nothing to evaluate")
    if target.min() == target.max():
        kind = "correct" if target[0] == 1 else "wrong"
        raise GradmetaError(f"{where}: every row is {kind}; ROC measures need both correct and wrong rows")
    if not np.isfinite(scores).all():
        raise GradmetaError(f"{where}: scores must be finite")
    with config_context(assume_finite=True):  # checked above; skips repeated validation
        fpr, tpr, _ = roc_curve(target, scores)
        fpr_out, tpr_out, _ = roc_curve(1 - target, -scores)
        return {
            "accuracy": float(accuracy_score(target, (scores >= threshold).astype(int))),
            "auroc": float(auc(fpr, tpr)),
            "aupr_wrong_positive": float(average_precision_score(1 - target, -scores)),
            "aupr_correct_positive": float(average_precision_score(target, scores)),
            "fpr_at_95tpr_correct_positive": float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
            "fpr_at_95tpr_wrong_positive": float(fpr_out[np.searchsorted(tpr_out, 0.95, side="left")]),
        }

