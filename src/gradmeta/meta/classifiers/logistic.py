"""Logistic regression as a meta classifier: signed log, standardising, L2 logistic regression solved
to the optimum, its C chosen by inner cross-validation on meta-train."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from gradmeta.core.params import Param
from gradmeta.meta.classifiers.registry import register_meta_classifier
from gradmeta.meta.classifiers.thresholded import StateArrays, ThresholdedClassifier


class SignedLog(TransformerMixin, BaseEstimator):
    """x -> sign(x) log(1 + |x| / s), s = the median |x| of each column on the training rows
    (the mean |x| where the median is 0, 1 where both are).

    Gradient metrics are heavy-tailed over orders of magnitude; this makes them usable by a linear model.
    """

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> SignedLog:
        med = np.median(np.abs(X), axis=0)
        mean = np.mean(np.abs(X), axis=0)
        self.scale_ = np.where(med > 0, med, np.where(mean > 0, mean, 1.0))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return np.sign(X) * np.log1p(np.abs(X) / self.scale_)


LOGISTIC_TOL = 1e-10  # Newton steps until the gradient is ~0: the fit is the optimum, not a rounding-dependent stop


def logistic_regression(C: float, max_iter: int) -> LogisticRegression:
    """The L2 logistic regression of :class:`LogisticMetaClassifier`: Newton-Cholesky to a tight tolerance.

    The regularised loss is strictly convex, so its optimum is unique; solving it to near machine
    precision (quadratic convergence, a handful of iterations) gives the same model on every CPU and
    BLAS, where a first-order solver stopped at a loose tolerance lands on a point that depends on
    the floating-point rounding of the machine.
    """
    return LogisticRegression(C=C, max_iter=max_iter, solver="newton-cholesky", tol=LOGISTIC_TOL)


AUTO = "auto"
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)  # decades around scikit-learn's default C = 1
CV_FOLDS = 3


def inner_folds(target: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded, stratified (train, validation) positions of ``folds`` folds of the rows (target in {0, 1});
    fewer folds when the smaller class has fewer rows than ``folds``, none when it has fewer than 2."""
    from sklearn.model_selection import StratifiedKFold

    k = min(folds, int(np.bincount(target, minlength=2).min()))
    if k < 2:
        return []
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(target)), target))


def mean_log_loss(target: np.ndarray, p: np.ndarray) -> float:
    """Mean binary log loss of probabilities ``p`` of class 1 (clipped to [1e-15, 1 - 1e-15])."""
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(target * np.log(p) + (1 - target) * np.log1p(-p)))


@register_meta_classifier("logistic", params={
    "C": Param(float, min=0.0, min_exclusive=True, words=(AUTO,),
               doc="inverse regularisation strength (auto: cross-validated over C_grid)"),
    "max_iter": Param(int, min=1, doc="solver iterations"),
    "signed_log": Param(bool, doc="inputs through sign(x) log(1 + |x| / s), s each column's median |x|, before "
                                  "standardising"),
    "C_grid": Param("floats", min=0.0, min_exclusive=True, doc="the C values auto chooses from"),
    "cv_folds": Param(int, min=2, doc="folds of auto's cross-validation")})
class LogisticMetaClassifier(ThresholdedClassifier):
    """(Signed log +) standardised inputs + L2 logistic regression (:func:`logistic_regression`); the
    score is the probability of the positive class. A convergence failure (``max_iter`` reached) is
    recorded in ``converged_`` (and logged by the meta stage), not hidden.

    ``C="auto"`` chooses the inverse regularisation strength on the training rows alone: every C of
    ``C_grid`` is fitted on ``cv_folds`` seeded, stratified folds (``random_state``) and scored by the
    out-of-fold log loss, pooled over the folds; the lowest loss wins, ties go to the smaller C (the
    stronger penalty). Log loss rather than AUROC because with few wrong predictions (a handful per
    fold) AUROC moves in coarse steps and ties, while log loss uses every row's probability and
    punishes the confident extrapolation that an under-regularised fit makes. With fewer than two rows
    of a class no fold can be cut and the smallest C of the grid is taken. ``C_`` is the C used and
    ``C_selection_`` says how it was chosen (``"given"``, ``"cv"`` or ``"few rows"``).
    """

    def __init__(self, C: float | str = AUTO, max_iter: int = 2000, signed_log: bool = True,
                 C_grid: tuple[float, ...] = C_GRID, cv_folds: int = CV_FOLDS, random_state: int = 0):
        self.C = C
        self.max_iter = max_iter
        self.signed_log = signed_log
        self.C_grid = C_grid
        self.cv_folds = cv_folds
        self.random_state = random_state

    def _pipeline(self, C: float):  # noqa: ANN202 - a scikit-learn Pipeline
        steps = [SignedLog()] if self.signed_log else []
        return make_pipeline(*steps, StandardScaler(), logistic_regression(C, self.max_iter))

    def _choose_C(self, X: np.ndarray, target: np.ndarray) -> tuple[float, str]:
        if self.C != AUTO:
            return float(self.C), "given"
        grid = sorted(float(c) for c in self.C_grid)
        if not grid or grid[0] <= 0:
            raise ValueError(f"LogisticMetaClassifier: C_grid must hold numbers > 0, got {list(self.C_grid)}")
        folds = inner_folds(target, self.cv_folds, self.random_state)
        if not folds:
            return grid[0], "few rows"
        # per fold: the input steps fitted once on its train rows, one regression warm-started along the
        # ascending grid (each C starts from the previous optimum; the optimum itself is unique)
        prepared = []
        for train, valid in folds:
            steps = self._pipeline(grid[0])[:-1].fit(X[train], target[train])
            prepared.append((steps.transform(X[train]), steps.transform(X[valid]), train, valid,
                             logistic_regression(grid[0], self.max_iter).set_params(warm_start=True)))
        losses = []
        for C in grid:
            p = np.empty(len(target))
            for X_train, X_valid, train, valid, regression in prepared:
                p[valid] = regression.set_params(C=C).fit(X_train, target[train]).predict_proba(X_valid)[:, 1]
            losses.append(mean_log_loss(target, p))
        return grid[int(np.argmin(losses))], "cv"  # argmin: the first (smallest C) of equal losses

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        self.C_, self.C_selection_ = self._choose_C(X, target)
        self.model_ = self._pipeline(self.C_)
        self.model_.fit(X, target)  # scikit-learn warns (ConvergenceWarning) if max_iter is reached
        self.n_iter_ = int(self.model_[-1].n_iter_[0])
        self.converged_ = self.n_iter_ < self.max_iter

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1]

    def _state_into(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        steps = self.model_.steps
        lr, scaler = steps[-1][1], steps[-2][1]
        scalars.update(converged=bool(self.converged_), n_iter=int(self.n_iter_), C_used=float(self.C_),
                       C_selection=str(self.C_selection_))
        arrays.update(scaler_mean=scaler.mean_, scaler_scale=scaler.scale_, scaler_var=scaler.var_,
                      scaler_seen=np.asarray(scaler.n_samples_seen_, dtype=np.int64).reshape(-1),
                      coef=lr.coef_, intercept=lr.intercept_, lr_n_iter=np.asarray(lr.n_iter_, dtype=np.int64))
        if self.signed_log:
            arrays["signed_log_scale"] = steps[0][1].scale_

    def _restore(self, scalars: dict[str, Any], read: StateArrays, n: int) -> None:
        steps = []
        if self.signed_log:
            signed = SignedLog()
            signed.scale_ = read.array("signed_log_scale", "f", 1, n)
            steps.append(signed)
        scaler = StandardScaler()
        scaler.mean_ = read.array("scaler_mean", "f", 1, n)
        scaler.scale_ = read.array("scaler_scale", "f", 1, n)
        scaler.var_ = read.array("scaler_var", "f", 1, n)
        scaler.n_samples_seen_ = int(read.array("scaler_seen", "i", 1)[0])
        scaler.n_features_in_ = n
        self.C_, self.C_selection_ = float(scalars["C_used"]), str(scalars["C_selection"])
        lr = logistic_regression(self.C_, self.max_iter)
        lr.coef_ = read.array("coef", "f", 2, n)
        lr.intercept_ = read.array("intercept", "f", 1, 1)
        lr.n_iter_ = read.array("lr_n_iter", "i", 1)
        lr.classes_ = np.array([0, 1])
        lr.n_features_in_ = n
        self.model_ = make_pipeline(*steps, scaler, lr)
        self.converged_, self.n_iter_ = bool(scalars["converged"]), int(scalars["n_iter"])
