"""Meta classifiers (scikit-learn style), the ``meta`` parameter group, and fitting every scenario.

A meta classifier learns, from a row of metrics, whether the CNN's prediction is correct. Its
``decision_scores`` are "higher = more likely correct"; ``threshold_`` is the cut chosen on the
meta-train rows (best accuracy, :func:`gradmeta.evaluation.best_threshold`) and ``predict`` applies it.
"""

from __future__ import annotations

import fnmatch
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gradmeta.datasets.concepts import KNOWN_CONCEPT, UNKNOWN_CONCEPTS
from gradmeta.errors import GradmetaError
from gradmeta.evaluation import best_threshold
from gradmeta.features import metric_columns
from gradmeta.params import ParamReader
from gradmeta.scenarios import LEAVE_ONE_OUT, Split, as_arrays, fit_sets, make_splits

CLASSIFIERS = ("logistic", "xgboost")
THRESHOLD = "threshold"  # a single metric used as the score, no training beyond sign and cut


def _check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if X.ndim != 2 or len(X) != len(y):
        raise GradmetaError(f"meta classifier: X must be (n, features) and y (n,), got {X.shape} and {y.shape}")
    if len(y) == 0 or y.min() == y.max():
        raise GradmetaError("meta classifier: training rows must hold both correct and wrong predictions")
    return X, y


class _Thresholded(BaseEstimator, ClassifierMixin):
    """Shared predict/threshold logic; subclasses implement ``_fit`` and ``decision_scores``."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Thresholded:
        """Fit on metrics X (n, features) and target y (n,), 1 = correct; then choose ``threshold_``."""
        X, y = _check_xy(X, y)
        self.classes_ = np.array([0, 1])
        self._fit(X, y)
        self.threshold_ = best_threshold(self.decision_scores(X), y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 where the score reaches the meta-train threshold (predicted correct), else 0."""
        return (self.decision_scores(X) >= self.threshold_).astype(int)


class SingleMetricClassifier(_Thresholded):
    """One metric as the score: orientation (sign) and cut chosen on meta-train, nothing else learned."""

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        if X.shape[1] != 1:
            raise GradmetaError(f"single-metric classifier takes one column, got {X.shape[1]}")
        self.sign_ = 1.0 if roc_auc_score(y, X[:, 0]) >= 0.5 else -1.0

    def decision_scores(self, X: np.ndarray) -> np.ndarray:
        return self.sign_ * np.asarray(X, dtype=np.float64)[:, 0]


class SignedLog(TransformerMixin, BaseEstimator):
    """x -> sign(x) log(1 + |x| / s), s = the median |x| of each column on the training rows.

    Gradient metrics are heavy-tailed over orders of magnitude; this makes them usable by a linear model.
    """

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> SignedLog:
        med = np.median(np.abs(X), axis=0)
        mean = np.mean(np.abs(X), axis=0)
        self.scale_ = np.where(med > 0, med, np.where(mean > 0, mean, 1.0))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.sign(X) * np.log1p(np.abs(X) / self.scale_)


class LogisticMetaClassifier(_Thresholded):
    """(Signed log +) standardised inputs + L2 logistic regression (lbfgs); a convergence failure is
    recorded in ``converged_`` and logged by the stage, not hidden."""

    def __init__(self, C: float = 1.0, max_iter: int = 2000, signed_log: bool = True):
        self.C = C
        self.max_iter = max_iter
        self.signed_log = signed_log

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        steps = [SignedLog()] if self.signed_log else []
        self.model_ = make_pipeline(*steps, StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter, solver="lbfgs"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.model_.fit(X, y)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)

    def decision_scores(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(np.asarray(X, dtype=np.float64))[:, 1]


class XGBoostMetaClassifier(_Thresholded):
    """Gradient-boosted trees (XGBoost, CPU ``hist``), deterministic for a seed."""

    def __init__(self, n_estimators: int = 100, max_depth: int = 3, learning_rate: float = 0.1,
                 subsample: float = 1.0, n_jobs: int = 2, random_state: int = 0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from xgboost import XGBClassifier

        self.model_ = XGBClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                    learning_rate=self.learning_rate, subsample=self.subsample, n_jobs=self.n_jobs,
                                    random_state=self.random_state, tree_method="hist", device="cpu",
                                    eval_metric="logloss")
        self.model_.fit(X, y)
        self.converged_ = True

    def decision_scores(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(np.asarray(X, dtype=np.float64))[:, 1].astype(np.float64)


@dataclass(frozen=True)
class MetaConfig:
    """The ``meta`` parameter group."""

    seed: int = 0
    repeats: int = 5
    test_fraction: float = 0.5
    unknown_concepts: tuple[str, ...] = UNKNOWN_CONCEPTS
    classifiers: tuple[str, ...] = CLASSIFIERS
    single_metrics: tuple[str, ...] = ("softmax/entropy", "softmax/max_prob", "softmax/energy", "baseline/gradnorm", "grad/*")
    feature_sets: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "softmax": ("softmax/*",), "gradient": ("grad/*",), "entropy+gradient": ("softmax/entropy", "grad/*"),
        "all": ("softmax/*", "grad/*", "baseline/*")})
    known_unknowns: str | tuple[str, ...] = LEAVE_ONE_OUT
    logistic: dict[str, Any] = field(default_factory=lambda: {"C": 1.0, "max_iter": 2000, "signed_log": True})
    xgboost: dict[str, Any] = field(default_factory=lambda: {"n_estimators": 100, "max_depth": 3,
                                                               "learning_rate": 0.1, "subsample": 1.0, "n_jobs": 2})

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> MetaConfig:
        r = ParamReader(params.get("meta"), "meta")
        d = cls()
        unknowns = tuple(r.str_list("unknown_concepts", list(d.unknown_concepts), choices=UNKNOWN_CONCEPTS))
        ku_raw = r.raw("known_unknowns", d.known_unknowns)
        if ku_raw == LEAVE_ONE_OUT:
            known_unknowns: str | tuple[str, ...] = LEAVE_ONE_OUT
        else:
            listed = r.str_list("known_unknowns", None) if isinstance(ku_raw, list) else None
            if listed is None or not all(c in unknowns for c in listed):
                raise r.fail("known_unknowns", f"'{LEAVE_ONE_OUT}' or a list of concepts from meta.unknown_concepts "
                             f"({', '.join(unknowns)})", ku_raw)
            known_unknowns = tuple(listed)
        sets_raw = r.raw("feature_sets", {k: list(v) for k, v in d.feature_sets.items()})
        if not isinstance(sets_raw, dict) or not sets_raw:
            raise r.fail("feature_sets", "a non-empty mapping of name to a list of column patterns", sets_raw)
        sets_reader = ParamReader(sets_raw, r.name("feature_sets"))
        feature_sets = {name: tuple(sets_reader.str_list(name)) for name in sets_raw}
        lr, xg = r.group("logistic"), r.group("xgboost")
        return cls(
            seed=r.int("seed", d.seed, min=0),
            repeats=r.int("repeats", d.repeats, min=1),
            test_fraction=r.float("test_fraction", d.test_fraction, min=0.0, max=1.0, min_exclusive=True, max_exclusive=True),
            unknown_concepts=unknowns,
            classifiers=tuple(r.str_list("classifiers", list(d.classifiers), choices=CLASSIFIERS)),
            single_metrics=tuple(r.str_list("single_metrics", list(d.single_metrics))),
            feature_sets=feature_sets,
            known_unknowns=known_unknowns,
            logistic={"C": lr.float("C", 1.0, min=0.0, min_exclusive=True), "max_iter": lr.int("max_iter", 2000, min=1),
                      "signed_log": lr.bool("signed_log", True)},
            xgboost={"n_estimators": xg.int("n_estimators", 100, min=1), "max_depth": xg.int("max_depth", 3, min=1),
                     "learning_rate": xg.float("learning_rate", 0.1, min=0.0, min_exclusive=True),
                     "subsample": xg.float("subsample", 1.0, min=0.0, max=1.0, min_exclusive=True),
                     "n_jobs": xg.int("n_jobs", 2, min=1)},
        )

    def make(self, classifier: str, seed: int) -> _Thresholded:
        """A fresh, unfitted meta classifier of the given kind."""
        if classifier == THRESHOLD:
            return SingleMetricClassifier()
        if classifier == "logistic":
            return LogisticMetaClassifier(**self.logistic)
        if classifier == "xgboost":
            return XGBoostMetaClassifier(**self.xgboost, random_state=seed)
        raise GradmetaError(f"unknown meta classifier {classifier!r}, expected one of {', '.join(CLASSIFIERS)}")


def expand_patterns(patterns: tuple[str, ...], columns: list[str], where: str) -> list[str]:
    """Columns matching any pattern (fnmatch), in table order; a pattern matching nothing is an error."""
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise GradmetaError(f"params.yaml: {where}: {pattern!r} matches no feature column")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in columns if c in chosen]


@dataclass
class Inputs:
    """What is compared: single metrics (one column each) and named feature sets (column lists)."""

    single: list[str]
    named_single: list[str]  # the single metrics listed by name (no wildcard): the headline ones
    sets: dict[str, list[str]]

    def columns_of(self, name: str) -> list[str]:
        """The columns an input uses: a feature set's list, or the single metric itself."""
        return self.sets.get(name, [name])

    def models(self, classifiers: tuple[str, ...], fit_name: str) -> list[tuple[str, str, list[str]]]:
        """(input name, classifier, columns) of every model for a fit; single metrics only on ``known``."""
        out = [(c, THRESHOLD, [c]) for c in self.single] if fit_name == "known" else []
        out += [(name, clf, cols) for name, cols in self.sets.items() for clf in classifiers]
        return out


def resolve_inputs(cfg: MetaConfig, metric_cols: list[str]) -> Inputs:
    """The single metrics and feature sets of ``cfg`` resolved against the metric columns of a
    features table (:func:`gradmeta.features.metric_columns`)."""
    single = expand_patterns(cfg.single_metrics, metric_cols, "meta.single_metrics")
    named = [c for c in single if c in cfg.single_metrics]
    sets = {name: expand_patterns(pats, metric_cols, f"meta.feature_sets.{name}") for name, pats in cfg.feature_sets.items()}
    return Inputs(single, named, sets)


@dataclass
class FittedMeta:
    """Everything the evaluate stage needs: config, inputs, per-repeat splits and fitted models."""

    config: MetaConfig
    inputs: Inputs
    splits: list[dict[str, Split]]
    models: list[dict[tuple[str, str, str], _Thresholded]]  # per repeat: (fit, input, classifier) -> model
    sources: dict[str, str]


def check_frames(frames: dict[str, pd.DataFrame], cfg: MetaConfig) -> None:
    """The known concept must have correct and wrong rows; every used concept must have rows."""
    for c in (KNOWN_CONCEPT, *cfg.unknown_concepts):
        if c not in frames or len(frames[c]) == 0:
            raise GradmetaError(f"scenario rows for concept {c!r} are empty (no features)")
    correct = frames[KNOWN_CONCEPT]["correct"].to_numpy()
    if correct.all() or not correct.any():
        kind = "correct" if correct.all() else "wrong"
        raise GradmetaError(f"misclassification scenario is empty: every {KNOWN_CONCEPT} test prediction is {kind}")
    columns = list(frames[KNOWN_CONCEPT].columns)
    for c, f in frames.items():
        if list(f.columns) != columns:
            raise GradmetaError(f"features of {c!r} have other columns than {KNOWN_CONCEPT!r} (extracted by another model?)")


def fit_all(frames: dict[str, pd.DataFrame], cfg: MetaConfig, sources: dict[str, str],
            log: logging.Logger | None = None) -> FittedMeta:
    """Fit every (fit, input, classifier) of every repeat."""
    check_frames(frames, cfg)
    metric_cols = metric_columns(frames[KNOWN_CONCEPT])
    inputs = resolve_inputs(cfg, metric_cols)
    used = {c: frames[c] for c in (KNOWN_CONCEPT, *cfg.unknown_concepts)}
    col_index = {c: i for i, c in enumerate(metric_cols)}
    arrays = as_arrays(used, metric_cols)
    all_splits, all_models = [], []
    for repeat in range(cfg.repeats):
        seed = cfg.seed + repeat
        splits = make_splits(used, cfg.test_fraction, seed)
        models: dict[tuple[str, str, str], _Thresholded] = {}
        for fit_name, rows in fit_sets(list(cfg.unknown_concepts), cfg.known_unknowns, splits).items():
            X_all, y = rows.gather(arrays)
            for name, clf, cols in inputs.models(cfg.classifiers, fit_name):
                model = cfg.make(clf, seed)
                try:
                    model.fit(X_all[:, [col_index[c] for c in cols]], y)
                except GradmetaError as exc:
                    raise GradmetaError(f"repeat {repeat}, fit {fit_name}, {name}/{clf}: {exc}") from None
                if not getattr(model, "converged_", True) and log is not None:
                    log.warning("repeat %d, fit %s, %s/%s: logistic regression did not converge in %d iterations",
                                repeat, fit_name, name, clf, cfg.logistic["max_iter"])
                models[(fit_name, name, clf)] = model
        all_splits.append(splits)
        all_models.append(models)
    return FittedMeta(cfg, inputs, all_splits, all_models, sources)
