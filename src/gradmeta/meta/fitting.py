"""Fitting every meta classifier of every scenario and repeat (the meta stage's work)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from gradmeta.core.errors import GradmetaError
from gradmeta.features import metric_columns
from gradmeta.meta.config import MetaConfig
from gradmeta.meta.estimators import ThresholdedClassifier
from gradmeta.meta.inputs import Inputs, resolve_inputs
from gradmeta.meta.scenarios import Split, as_arrays, fit_sets, make_splits

ModelKey = tuple[str, str, str]  # (fit name, input name, classifier)


@dataclass
class FittedMeta:
    """Everything the evaluate stage needs: config, inputs, per-repeat splits and fitted models."""

    config: MetaConfig
    inputs: Inputs
    splits: list[dict[str, Split]]
    models: list[dict[ModelKey, ThresholdedClassifier]]  # per repeat: (fit, input, classifier) -> model
    sources: dict[str, str]


def check_frames(frames: dict[str, pd.DataFrame], cfg: MetaConfig) -> None:
    """The known concept must have correct and wrong rows; every used concept must have rows."""
    known = cfg.known_concept
    for c in (known, *cfg.unknown_concepts):
        if c not in frames or len(frames[c]) == 0:
            raise GradmetaError(f"scenario rows for concept {c!r} are empty (no features)")
    correct = frames[known]["correct"].to_numpy()
    if correct.all() or not correct.any():
        kind = "correct" if correct.all() else "wrong"
        raise GradmetaError(f"misclassification scenario is empty: every {known} test prediction is {kind}")
    columns = list(frames[known].columns)
    for c, f in frames.items():
        if list(f.columns) != columns:
            raise GradmetaError(f"features of {c!r} have other columns than {known!r} (extracted by another model?)")


def fit_all(frames: dict[str, pd.DataFrame], cfg: MetaConfig, sources: dict[str, str],
            log: logging.Logger | None = None) -> FittedMeta:
    """Fit every (fit, input, classifier) of every repeat; a fit that fails is a GradmetaError
    naming the repeat, fit and input."""
    check_frames(frames, cfg)
    metric_cols = metric_columns(frames[cfg.known_concept])
    inputs = resolve_inputs(cfg, metric_cols)
    used = {c: frames[c] for c in (cfg.known_concept, *cfg.unknown_concepts)}
    col_index = {c: i for i, c in enumerate(metric_cols)}
    arrays = as_arrays(used, metric_cols)
    all_splits, all_models = [], []
    for repeat in range(cfg.repeats):
        seed = cfg.seed + repeat
        splits = make_splits(used, cfg.test_fraction, seed, cfg.known_concept)
        models: dict[ModelKey, ThresholdedClassifier] = {}
        for fit_name, rows in fit_sets(cfg.known_concept, list(cfg.unknown_concepts), cfg.known_unknowns, splits).items():
            X_all, y = rows.gather(arrays)
            for name, clf, cols in inputs.models(cfg.classifiers, fit_name):
                where = f"repeat {repeat}, fit {fit_name}, {name}/{clf}"
                models[(fit_name, name, clf)] = _fit_one(cfg.make(clf, seed), X_all[:, [col_index[c] for c in cols]],
                                                         y, where, log)
        all_splits.append(splits)
        all_models.append(models)
    return FittedMeta(cfg, inputs, all_splits, all_models, sources)


def _fit_one(model: ThresholdedClassifier, X, y, where: str, log: logging.Logger | None) -> ThresholdedClassifier:
    try:
        model.fit(X, y)
    except ValueError as exc:
        raise GradmetaError(f"{where}: {exc}") from None
    if not getattr(model, "converged_", True) and log is not None:
        log.warning("%s: logistic regression did not converge in %d iterations", where, model.max_iter)
    return model
