"""The meta classifiers' base: the estimator contract (see :mod:`gradmeta.meta.classifiers`), the
threshold, saving without pickle (``state`` / ``from_state``), the kinds by name, and the one-metric
classifier."""

from __future__ import annotations

import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real
from typing import Any, ClassVar, Protocol

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

THRESHOLD = "threshold"  # the classifier name of a single metric used as the score (no training beyond sign and cut)


class StateArrays(Protocol):
    """The arrays of one saved model state, read on demand and checked."""

    def array(self, name: str, kind: str, ndim: int, length: int | None = None) -> np.ndarray:
        """Array ``name``: dtype kind (``"f"``, ``"i"``, ``"u"``), dimensions and last-axis length
        checked; a missing or malformed one raises ValueError naming it."""

    def where(self, name: str) -> str:
        """How to name array ``name`` in a message (e.g. its member in the file)."""


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


MAX_FEATURES_IN = 100_000  # inputs of a saved meta classifier (the default pipeline's largest set has about 300)


class ThresholdedClassifier(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Binary meta classifier: a score learned by ``_fit``/``_scores``, cut at ``threshold_``.

    Saved without pickle: ``state()`` gives (JSON-able scalars, numeric arrays) and
    ``from_state(scalars, read)`` rebuilds the fitted model from them, scoring exactly as before
    (``read``: the saved arrays, :class:`StateArrays`). Each concrete class
    is known by its ``kind`` (the ``meta.classifiers`` name), :func:`classifier_kind`.
    """

    _parameter_constraints: dict = {}  # subclasses name their constructor arguments' constraints
    kind: ClassVar[str] = ""
    _KINDS: ClassVar[dict[str, type[ThresholdedClassifier]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            ThresholdedClassifier._KINDS[cls.kind] = cls

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able scalars, arrays) that rebuild this fitted model exactly (:meth:`from_state`)."""
        check_is_fitted(self)
        scalars: dict[str, Any] = {"params": self.get_params(), "n_features_in": int(self.n_features_in_)}
        arrays = {"classes": np.asarray(self.classes_, dtype=np.int64),
                  "threshold": np.array([self.threshold_], dtype=np.float64)}
        self._state_into(scalars, arrays)
        return scalars, arrays

    @classmethod
    def from_state(cls, scalars: dict[str, Any], read: StateArrays) -> ThresholdedClassifier:
        """The fitted model of a saved :meth:`state`; a malformed state raises ValueError naming what."""
        if not isinstance(scalars.get("params"), dict):
            raise ValueError("no parameters")
        try:
            model = cls(**scalars["params"])
        except TypeError:
            raise ValueError(f"bad parameters for {cls.kind}: {scalars['params']}") from None
        n = scalars["n_features_in"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FEATURES_IN:
            raise ValueError(f"n_features_in must be an integer 1..{MAX_FEATURES_IN}, got {str(n)[:40]}")
        model.n_features_in_ = n
        model.classes_ = read.array("classes", "i", 1, 2)
        model.threshold_ = float(read.array("threshold", "f", 1, 1)[0])
        if np.isnan(model.threshold_):
            raise ValueError("the threshold is NaN")
        model._restore(scalars, read, n)
        return model

    def _state_into(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Add the kind's own fitted scalars and arrays."""

    def _restore(self, scalars: dict[str, Any], read: StateArrays, n: int) -> None:
        """Set the kind's own fitted attributes from a saved state (``n`` features)."""

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
        if not (classes.dtype == bool or set(classes.tolist()) == {0, 1}):
            low, high = (repr(c) for c in classes.tolist())
            warnings.warn(f"{type(self).__name__}: the labels are {low} and {high}, not 0/1: {high} (the larger, "
                          "classes_[1]) is the positive class and scores high; to choose it, fit on "
                          "y == <positive label>", UserWarning, stacklevel=2)
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
    """One metric as the score: cut (and, for a raw metric, orientation) chosen on the training rows.

    ``column``: None (X must have exactly one column, the metric) or the index of the metric's column in X.
    ``sign``: None for a raw metric (``softmax/*``, ``grad/*``: the orientation that gives an AUROC of at
    least 0.5 on the training rows), or +1.0 / -1.0 for a score whose sign is part of its definition
    (``detector/*``, ``baseline/*``: higher = more likely positive, as OpenOOD and pytorch-ood use them):
    then the training rows choose only the threshold. :func:`documented_sign` says which a column is.
    """

    _parameter_constraints: dict = {"column": [Interval(Integral, 0, None, closed="left"), None],
                                    "sign": [Real, None]}
    kind = THRESHOLD

    def __init__(self, column: int | None = None, sign: float | None = None):
        self.column = column
        self.sign = sign

    def _state_into(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        scalars["sign"] = float(self.sign_)

    def _restore(self, scalars: dict[str, Any], read: StateArrays, n: int) -> None:
        self.sign_ = float(scalars["sign"])

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        if self.column is None and X.shape[1] != 1:
            raise ValueError(f"SingleMetricClassifier takes one feature column, got {X.shape[1]} "
                             "(set column= to choose one)")
        if self.column is not None and self.column >= X.shape[1]:
            raise ValueError(f"SingleMetricClassifier: column={self.column}, but X has {X.shape[1]} features")
        if self.sign is not None:
            if self.sign not in (1.0, -1.0):
                raise ValueError(f"SingleMetricClassifier: sign must be 1, -1 or None, got {self.sign!r}")
            self.sign_ = float(self.sign)
            return
        self.sign_ = 1.0 if roc_auc_score(target, self._metric(X)) >= 0.5 else -1.0

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # one column, one cut: no match for a model on every feature
        return tags

    def _metric(self, X: np.ndarray) -> np.ndarray:
        return X[:, 0 if self.column is None else self.column]

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self.sign_ * self._metric(X)


DOCUMENTED_SIGN_PREFIXES = ("detector/", "baseline/")  # scores whose sign is part of their definition


def documented_sign(column: str) -> float | None:
    """+1.0 for a features column whose sign is part of its definition (``detector/*``, ``baseline/*``:
    higher = more likely in-distribution and correct), None for a raw metric whose orientation is
    learned on meta-train (``softmax/*``, ``grad*/*``, ``factor/*``)."""
    return 1.0 if column.startswith(DOCUMENTED_SIGN_PREFIXES) else None


def classifier_kind(kind: str) -> type[ThresholdedClassifier]:
    """The meta classifier class of a ``kind`` (``threshold``, ``logistic``, ``xgboost``, or any other
    subclass of :class:`ThresholdedClassifier` that sets one)."""
    if kind not in ThresholdedClassifier._KINDS:
        raise ValueError(f"unknown meta classifier {kind!r}, expected one of {', '.join(ThresholdedClassifier._KINDS)}")
    return ThresholdedClassifier._KINDS[kind]
