"""The ``meta`` parameter group, validated, and the meta classifiers it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradmeta.core.concepts import DEFAULT_KNOWN, Concepts, concept_names
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import ParamReader, as_params
from gradmeta.meta.estimators import (
    AUTO,
    C_GRID,
    CV_FOLDS,
    REL_U,
    THRESHOLD,
    RelUClassifier,
    SingleMetricClassifier,
    ThresholdedClassifier,
    classifier_kind,
    documented_sign,
)
from gradmeta.meta.scenarios import LEAVE_ONE_OUT

CLASSIFIERS = ("logistic", "xgboost")
DEFAULT_LOGISTIC: dict[str, Any] = {"C": AUTO, "max_iter": 2000, "signed_log": True, "C_grid": list(C_GRID),
                                    "cv_folds": CV_FOLDS}
DEFAULT_XGBOOST: dict[str, Any] = {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1, "subsample": 1.0,
                                   "n_jobs": 1, "early_stopping_rounds": None, "validation_fraction": 0.2,
                                   "max_bin": 256}


def _default_feature_sets() -> dict[str, tuple[str, ...]]:
    return {"softmax": ("softmax/*",), "gradient": ("grad/*",), "entropy+gradient": ("softmax/entropy", "grad/*"),
            "all": ("softmax/*", "grad/*", "baseline/*")}


@dataclass(frozen=True)
class MetaConfig:
    """The ``meta`` parameter group, with the known concept from ``data.known``."""

    seed: int = 0
    repeats: int = 5
    test_fraction: float = 0.5
    known_concept: str = DEFAULT_KNOWN
    unknown_concepts: tuple[str, ...] = ("letters", "omniglot", "cifar10", "noise")
    classifiers: tuple[str, ...] = CLASSIFIERS
    single_metrics: tuple[str, ...] = ("softmax/entropy", "softmax/max_prob", "softmax/energy", "baseline/gradnorm",
                                       "grad/*")
    feature_sets: dict[str, tuple[str, ...]] = field(default_factory=_default_feature_sets)
    known_unknowns: str | tuple[str, ...] = LEAVE_ONE_OUT
    logistic: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LOGISTIC))
    xgboost: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_XGBOOST))
    n_jobs: int = field(default=1, compare=False)  # fits at once (threads); no effect on the result
    params_file: str = field(default="params.yaml", compare=False)  # named in errors raised later

    def __post_init__(self) -> None:
        # a partial dict (a library caller's) means: these keys, the defaults for the rest
        object.__setattr__(self, "logistic", {**DEFAULT_LOGISTIC, **self.logistic})
        object.__setattr__(self, "xgboost", {**DEFAULT_XGBOOST, **self.xgboost})

    @classmethod
    def from_params(cls, params: dict[str, Any], concepts: Concepts | None = None) -> MetaConfig:
        """Validate ``params['meta']``; a bad value is a GradmetaError naming the parameter.

        ``meta.unknown_concepts`` (null = every concept but the known one) is checked against the
        concepts of ``params['data']``, or against ``concepts`` when given (a saved config)."""
        params = as_params(params)
        concepts = concepts or concept_names(params)
        r = params.reader("meta")
        d = cls()
        listed = r.raw("unknown_concepts", None)
        if listed is not None and (not isinstance(listed, list) or not listed):
            raise r.fail("unknown_concepts", f"null (every concept but {concepts.known}) or a non-empty list of "
                         f"concepts from {', '.join(concepts.unknowns) or '(none: data has no other concept)'}", listed)
        unknowns = (concepts.unknowns if listed is None
                    else tuple(r.str_list("unknown_concepts", choices=concepts.unknowns)))
        cfg = cls(
            known_concept=concepts.known,
            seed=r.seed("seed", d.seed),
            repeats=r.int("repeats", d.repeats, min=1),
            test_fraction=r.float("test_fraction", d.test_fraction, min=0.0, max=1.0, min_exclusive=True,
                                  max_exclusive=True),
            unknown_concepts=unknowns,
            classifiers=tuple(r.str_list("classifiers", list(d.classifiers), choices=CLASSIFIERS, non_empty=True)),
            single_metrics=tuple(r.str_list("single_metrics", list(d.single_metrics))),
            feature_sets=_feature_sets(r, d.feature_sets),
            known_unknowns=_known_unknowns(r, unknowns, d.known_unknowns),
            logistic=_logistic(r.group("logistic")),
            xgboost=_xgboost(r.group("xgboost")),
            n_jobs=r.threads("n_jobs", d.n_jobs),
            params_file=r.source,
        )
        r.done()
        return cfg

    def make(self, classifier: str, seed: int, metric: str = "") -> ThresholdedClassifier:
        """A fresh, unfitted meta classifier of the given kind (``threshold`` or one of CLASSIFIERS);
        for ``threshold``, ``metric`` is the column it scores with: a detector's or baseline's own sign
        is kept, a raw metric's orientation is learned (:func:`documented_sign`)."""
        if classifier == THRESHOLD:
            return SingleMetricClassifier(sign=documented_sign(metric))
        if classifier == REL_U:
            return RelUClassifier()
        if classifier not in CLASSIFIERS:
            raise GradmetaError(f"unknown meta classifier {classifier!r}, expected one of {', '.join(CLASSIFIERS)}")
        return classifier_kind(classifier)(**getattr(self, classifier), random_state=seed)


def _known_unknowns(r: ParamReader, unknowns: tuple[str, ...], default: str) -> str | tuple[str, ...]:
    raw = r.raw("known_unknowns", default)
    if raw == LEAVE_ONE_OUT:
        return LEAVE_ONE_OUT
    listed = r.str_list("known_unknowns", None) if isinstance(raw, list) else None
    if listed is None or not all(c in unknowns for c in listed):
        raise r.fail("known_unknowns", f"'{LEAVE_ONE_OUT}' or a list of concepts from meta.unknown_concepts "
                     f"({', '.join(unknowns)})", raw)
    return tuple(listed)


def _feature_sets(r: ParamReader, default: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    raw = r.raw("feature_sets", None)
    if raw is None:
        return dict(default)
    if not isinstance(raw, dict) or not raw:
        raise r.fail("feature_sets", "a non-empty mapping of name to a list of column patterns", raw)
    sets = r.group("feature_sets")
    return {name: tuple(sets.str_list(name, non_empty=True)) for name in raw}


def _logistic(lr: ParamReader) -> dict[str, Any]:
    """``C``: ``auto`` (chosen by inner cross-validation on meta-train, see LogisticMetaClassifier) or a number > 0."""
    C = AUTO if lr.raw("C", AUTO) == AUTO else lr.float("C", min=0.0, min_exclusive=True)
    grid = lr.raw("C_grid", list(C_GRID))
    if not isinstance(grid, list) or not grid or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in grid):
        raise lr.fail("C_grid", "a non-empty list of numbers > 0", grid)
    return {"C": C, "max_iter": lr.int("max_iter", 2000, min=1), "signed_log": lr.bool("signed_log", True),
            "C_grid": [float(c) for c in grid], "cv_folds": lr.int("cv_folds", CV_FOLDS, min=2)}


def _xgboost(xg: ParamReader) -> dict[str, Any]:
    return {"n_estimators": xg.int("n_estimators", 100, min=1), "max_depth": xg.int("max_depth", 3, min=1),
            "learning_rate": xg.float("learning_rate", 0.1, min=0.0, min_exclusive=True),
            "subsample": xg.float("subsample", 1.0, min=0.0, max=1.0, min_exclusive=True),
            "n_jobs": xg.threads("n_jobs", 1),
            "early_stopping_rounds": xg.int("early_stopping_rounds", None, min=1, allow_none=True),
            "validation_fraction": xg.float("validation_fraction", 0.2, min=0.0, max=1.0, min_exclusive=True,
                                            max_exclusive=True),
            "max_bin": xg.int("max_bin", 256, min=2)}
