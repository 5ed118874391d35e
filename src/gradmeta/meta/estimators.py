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
from sklearn.utils._param_validation import Interval
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


class LogisticMetaClassifier(ThresholdedClassifier):
    """(Signed log +) standardised inputs + L2 logistic regression (:func:`logistic_regression`); the
    score is the probability of the positive class. A convergence failure (``max_iter`` reached) is
    recorded in ``converged_`` (and logged by the meta stage), not hidden."""

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "signed_log": ["boolean"],
    }

    def __init__(self, C: float = 1.0, max_iter: int = 2000, signed_log: bool = True):
        self.C = C
        self.max_iter = max_iter
        self.signed_log = signed_log

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        steps = [SignedLog()] if self.signed_log else []
        self.model_ = make_pipeline(*steps, StandardScaler(), logistic_regression(self.C, self.max_iter))
        self.model_.fit(X, target)  # scikit-learn warns (ConvergenceWarning) if max_iter is reached
        self.n_iter_ = int(self.model_[-1].n_iter_[0])
        self.converged_ = self.n_iter_ < self.max_iter

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1]



class XGBoostMetaClassifier(ThresholdedClassifier):
    """Gradient-boosted trees (XGBoost, CPU ``hist``), deterministic for a seed; the score is the
    probability of the positive class."""

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "n_jobs": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, n_estimators: int = 100, max_depth: int = 3, learning_rate: float = 0.1,
                 subsample: float = 1.0, n_jobs: int = 2, random_state: int = 0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        from xgboost import XGBClassifier

        self.model_ = XGBClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                    learning_rate=self.learning_rate, subsample=self.subsample, n_jobs=self.n_jobs,
                                    random_state=self.random_state, tree_method="hist", device="cpu",
                                    eval_metric="logloss")
        self.model_.fit(X, target)
        self.converged_ = True

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1].astype(np.float64)

