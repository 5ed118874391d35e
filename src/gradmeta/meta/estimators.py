"""Meta classifiers, following scikit-learn's estimator contract.

A meta classifier learns, from a row of metrics, whether the CNN's prediction is correct (target
1 = correct, 0 = wrong). Each is a binary scikit-learn classifier (``ClassifierMixin`` before
``BaseEstimator``; constructor arguments validated at ``fit`` with scikit-learn's messages;
``check_is_fitted`` before use):

- ``score_samples(X)``: the raw score, higher = more likely the positive class (``classes_[1]``,
  correct); this is what the measures rank;
- ``threshold_``: the cut chosen on the training rows (best accuracy, :func:`best_threshold`);
- ``predict(X)``: ``classes_[score >= threshold_]``; ``decision_function(X)``: ``score - threshold_``
  (positive = predicted correct, as scikit-learn expects of a binary classifier).

There is no ``predict_proba``: ``predict`` cuts at the meta-train threshold, not at probability 0.5,
so a probability whose argmax disagreed with ``predict`` would break the contract. For logistic
regression and XGBoost the score *is* the positive-class probability.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

THRESHOLD = "threshold"  # the classifier name of a single metric used as the score (no training beyond sign and cut)


def best_threshold(scores: np.ndarray, target: np.ndarray) -> float:
    """The threshold t maximising the accuracy of ``score >= t`` on these rows (target 1 = positive).

    t lies midway between the lowest accepted and the highest rejected score (+inf rejects all);
    among equally good cuts the one accepting most rows wins. A constant score is handled.
    """
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], target[order]
    # accepting the top k rows: correct = positives in top k + negatives outside it
    pos_cum = np.concatenate([[0], np.cumsum(t)])
    neg_total = int((~t).sum())
    neg_cum = np.concatenate([[0], np.cumsum(~t)])
    correct = pos_cum + (neg_total - neg_cum)
    # only cut between distinct scores: k must end a run of equal scores
    valid = np.concatenate([[True], np.r_[s[1:] != s[:-1], True]])
    correct = np.where(valid, correct, -1)
    k = int(np.argmax(correct[::-1]))
    k = len(correct) - 1 - k  # the largest k among the best: lowest threshold on ties
    if k == 0:
        return float("inf")
    if k == len(s):
        return float(s[-1])
    return float((s[k - 1] + s[k]) / 2)


class ThresholdedClassifier(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Binary meta classifier: a score learned by ``_fit``/``_scores``, cut at ``threshold_``."""

    _parameter_constraints: dict = {}  # subclasses name their constructor arguments' constraints

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # correct vs wrong: binary by construction
        return tags

    def fit(self, X: np.ndarray, y: np.ndarray) -> ThresholdedClassifier:
        """Fit on metrics X (n, features) and labels y (n,) of exactly two classes (the larger one,
        ``classes_[1]``, is the positive class: 1 = correct); then choose ``threshold_``."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {kind}: "
                             f"{type(self).__name__} needs training rows of 2 classes (correct and wrong predictions).")
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"{type(self).__name__} needs training rows of 2 classes (correct and wrong "
                             f"predictions), got 1 class")
        self.classes_ = classes
        target = (y == self.classes_[1]).astype(int)
        self._fit(X, target)
        self.threshold_ = best_threshold(self._scores(X), target)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (n,) float64: higher = more likely ``classes_[1]`` (correct)."""
        check_is_fitted(self)
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``score_samples(X) - threshold_``: >= 0 where ``classes_[1]`` is predicted."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``classes_[1]`` where the score reaches the training threshold (predicted correct), else ``classes_[0]``."""
        accepted = self.score_samples(X) >= self.threshold_
        return self.classes_[accepted.astype(int)]

    @abstractmethod
    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        """Learn the score from validated X (n, features) float64 and target (n,) in {0, 1}."""

    @abstractmethod
    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Scores (n,) float64 of validated X, higher = more likely target 1."""


class SingleMetricClassifier(ThresholdedClassifier):
    """One metric as the score: orientation (sign) and cut chosen on the training rows, nothing else.

    ``column``: None (X must have exactly one column, the metric) or the index of the metric's column in X.
    """

    _parameter_constraints: dict = {"column": [Interval(Integral, 0, None, closed="left"), None]}

    def __init__(self, column: int | None = None):
        self.column = column

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        if self.column is None and X.shape[1] != 1:
            raise ValueError(f"SingleMetricClassifier takes one feature column, got {X.shape[1]} "
                             "(set column= to choose one)")
        if self.column is not None and self.column >= X.shape[1]:
            raise ValueError(f"SingleMetricClassifier: column={self.column}, but X has {X.shape[1]} features")
        self.sign_ = 1.0 if roc_auc_score(target, self._metric(X)) >= 0.5 else -1.0

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # one column, one cut: no match for a model on every feature
        return tags

    def _metric(self, X: np.ndarray) -> np.ndarray:
        return X[:, 0 if self.column is None else self.column]

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self.sign_ * self._metric(X)


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

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither"), StrOptions({AUTO})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "signed_log": ["boolean"],
        "C_grid": ["array-like"],
        "cv_folds": [Interval(Integral, 2, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

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


class XGBoostMetaClassifier(ThresholdedClassifier):
    """Gradient-boosted trees (XGBoost, CPU ``hist``), deterministic for a seed; the score is the
    probability of the positive class.

    ``early_stopping_rounds`` (None = off): the number of rounds is chosen on the training rows alone.
    A seeded, stratified ``validation_fraction`` of them is held out, trees are added (at most
    ``n_estimators``) until the held-out log loss has not improved for ``early_stopping_rounds`` rounds,
    and the model is refitted on every training row with the best number of rounds, ``n_rounds_``.
    With fewer than two rows of a class in either part, ``n_estimators`` rounds are used.

    ``max_bin``: the histogram bins per feature of the ``hist`` method (XGBoost's default 256). Each
    round's cost grows with it; 64 bins fit the default run's meta classifiers about 1.5-2.5x faster.
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "max_bin": [Interval(Integral, 2, None, closed="left")],
        "n_jobs": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(self, n_estimators: int = 100, max_depth: int = 3, learning_rate: float = 0.1,
                 subsample: float = 1.0, n_jobs: int = 2, random_state: int = 0,
                 early_stopping_rounds: int | None = None, validation_fraction: float = 0.2, max_bin: int = 256):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.max_bin = max_bin

    def _booster(self, n_estimators: int, **extra):  # noqa: ANN003, ANN202 - an XGBClassifier
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                             subsample=self.subsample, n_jobs=self.n_jobs, random_state=self.random_state,
                             tree_method="hist", max_bin=self.max_bin, device="cpu", eval_metric="logloss",
                             **extra)

    def _rounds(self, X: np.ndarray, target: np.ndarray) -> int:
        if self.early_stopping_rounds is None:
            return self.n_estimators
        from sklearn.model_selection import train_test_split

        counts = np.bincount(target, minlength=2)
        if (counts * self.validation_fraction).min() < 2 or (counts * (1 - self.validation_fraction)).min() < 2:
            return self.n_estimators
        train, valid = train_test_split(np.arange(len(target)), test_size=self.validation_fraction,
                                        random_state=self.random_state, stratify=target)
        probe = self._booster(self.n_estimators, early_stopping_rounds=self.early_stopping_rounds)
        probe.fit(X[train], target[train], eval_set=[(X[valid], target[valid])], verbose=False)
        return int(probe.best_iteration) + 1

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        self.n_rounds_ = self._rounds(X, target)
        self.model_ = self._booster(self.n_rounds_)
        self.model_.fit(X, target)
        self.converged_ = True

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1].astype(np.float64)
