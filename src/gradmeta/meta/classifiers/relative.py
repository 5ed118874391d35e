"""REL-U (Dadalto, Romanelli, Pichler & Piantanida, "A Data-Driven Measure of Relative Uncertainty for
Misclassification Detection", ICLR 2024, arXiv 2306.01710): a rejection score of the softmax
probabilities p (C,) learned in closed form from correct and wrong predictions.

The uncertainty is u(p) = p^T D p with a class-pair matrix D (C, C), symmetric, non-negative, zero on
the diagonal and of unit Frobenius norm. Fit, on meta-train rows (target 1 = correct, 0 = wrong) with
M_correct = mean p p^T over the correct rows and M_wrong over the wrong ones:

    D = relu(lambda M_wrong - (1 - lambda) M_correct), diagonal set to 0, then D / ||D||_F,

the minimiser of (1 - lambda) E_correct[u] - lambda E_wrong[u] under those constraints. Score (higher =
correct): -u(p). The same supervision as the meta classifiers, so it is the fair comparison for them.
Its input is the features' ``prob/<c>`` columns (the meta stage's input ``probabilities``).
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval

from gradmeta.meta.classifiers.thresholded import StateArrays, ThresholdedClassifier

REL_U = "relu"
PROBABILITIES = "probabilities"  # the input REL-U is fitted on: every prob/<c> column


class RelUClassifier(ThresholdedClassifier):
    """REL-U: -p^T D p with D learned in closed form (``trade_off`` = the paper's lambda)."""

    _parameter_constraints: dict = {"trade_off": [Interval(Real, 0.0, 1.0, closed="both")]}
    kind = REL_U

    def __init__(self, trade_off: float = 0.5):
        self.trade_off = trade_off

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        if X.shape[1] < 2:
            raise ValueError(f"REL-U needs the probabilities of at least 2 classes, got {X.shape[1]} columns")
        correct, wrong = X[target == 1], X[target == 0]
        pairs = self.trade_off * (wrong.T @ wrong) / len(wrong) - (1.0 - self.trade_off) * (correct.T @ correct) / len(correct)
        relative = np.maximum(pairs, 0.0)
        np.fill_diagonal(relative, 0.0)
        norm = float(np.linalg.norm(relative))
        if norm == 0.0:
            raise ValueError("REL-U: no class pair is more frequent among wrong predictions than correct ones "
                             "(D would be 0)")
        self.relative_ = relative / norm

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return -((X @ self.relative_) * X).sum(1)

    def _state_into(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays["relative"] = self.relative_

    def _restore(self, scalars: dict[str, Any], read: StateArrays, n: int) -> None:
        relative = read.array("relative", "f", 2, n)
        if relative.shape != (n, n) or not np.isfinite(relative).all():
            raise ValueError(f"{read.where('relative')}: expected a finite ({n}, {n}) matrix, got {relative.shape}")
        self.relative_ = relative
