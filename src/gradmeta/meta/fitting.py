"""Fitting every meta classifier of every scenario and repeat (the meta stage's work)."""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gradmeta.core.errors import GradmetaError
from gradmeta.features import metric_columns
from gradmeta.meta.classifiers import ThresholdedClassifier
from gradmeta.meta.config import MetaConfig
from gradmeta.meta.inputs import Inputs, resolve_inputs
from gradmeta.meta.scenarios import Split, as_arrays, check_split_sizes, fit_sets, make_splits

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


def check_split_rows(fitted: FittedMeta, frames: dict[str, pd.DataFrame], where: str) -> None:
    """Every split of ``fitted`` must cover exactly the rows of its concept's features in ``frames``
    (else the features changed after the meta stage ran), and be the very split the meta stage draws
    for its repeat (recomputed here: a file whose meta-train and meta-test rows were swapped or edited
    would score models on rows they were fitted on); ``where`` names the fitted file."""
    cfg = fitted.config
    if len(fitted.splits) != cfg.repeats or len(fitted.models) != cfg.repeats:
        raise GradmetaError(f"{where}: holds {len(fitted.splits)} repeats, its config says {cfg.repeats}; "
                            "rerun the meta stage")
    for repeat, splits in enumerate(fitted.splits):
        for concept, split in splits.items():
            n, have = len(split.train) + len(split.test), len(frames[concept]) if concept in frames else 0
            if n != have:
                raise GradmetaError(f"{where}: fitted on {n} rows of {concept!r}, its features have {have}; "
                                    "rerun the meta stage")
        drawn = make_splits({c: frames[c] for c in splits}, cfg.test_fraction, cfg.seed + repeat, cfg.known_concept)
        for concept, split in splits.items():
            if not (np.array_equal(split.train, drawn[concept].train) and np.array_equal(split.test, drawn[concept].test)):
                raise GradmetaError(f"{where}: the meta-train/meta-test rows of {concept!r} in repeat {repeat} are not "
                                    "the split the meta stage draws for them (edited or swapped); rerun the meta stage")


def fit_all(frames: dict[str, pd.DataFrame], cfg: MetaConfig, sources: dict[str, str],
            log: logging.Logger | None = None) -> FittedMeta:
    """Fit every (fit, input, classifier) of every repeat; a fit that fails is a GradmetaError
    naming the repeat, fit and input.

    The models of one (repeat, fit) share its gathered rows and are fitted ``cfg.n_jobs`` at a time
    in threads (XGBoost and BLAS release the GIL); each model is independent and seeded, so the
    result does not depend on ``n_jobs``. BLAS is held to one thread per fit while several run, and
    XGBoost uses ``meta.xgboost.n_jobs`` threads each: the budget is ``n_jobs`` x that.
    """
    check_frames(frames, cfg)
    metric_cols = metric_columns(frames[cfg.known_concept])
    inputs = resolve_inputs(cfg, metric_cols)
    used = {c: frames[c] for c in (cfg.known_concept, *cfg.unknown_concepts)}
    col_index = {c: i for i, c in enumerate(metric_cols)}
    check_split_sizes(used, cfg.test_fraction, cfg.params_file)
    arrays = as_arrays(used, metric_cols)
    budget = cfg.n_jobs * cfg.threads_per_fit()
    if log is not None and budget > (os.cpu_count() or 1):
        log.warning("meta.n_jobs x a fit's threads (meta.xgboost.n_jobs) = %d threads on %d cores: fits will contend",
                    budget, os.cpu_count() or 1)
    all_splits, all_models = [], []
    blas_threads = 1 if cfg.n_jobs > 1 else None
    with (warnings.catch_warnings(), threadpool_limits(limits=blas_threads),
          Parallel(n_jobs=cfg.n_jobs, backend="threading") as parallel,
          logging_redirect_tqdm(), tqdm(desc="meta fits", unit="group", disable=None, leave=False) as bar):
        # the bar shows on a terminal only (tqdm's disable=None); the log lines print above it
        # set here, before any worker starts (the filter list is process-wide and not thread-safe to
        # change); a logistic fit that does not converge is logged by _fit_one instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        done = 0
        for repeat in range(cfg.repeats):
            seed = cfg.seed + repeat
            splits = make_splits(used, cfg.test_fraction, seed, cfg.known_concept)
            models: dict[ModelKey, ThresholdedClassifier] = {}
            groups = fit_sets(cfg.known_concept, list(cfg.unknown_concepts), cfg.known_unknowns, splits)
            for fit_name, rows in groups.items():
                start = time.perf_counter()
                X_all, y = rows.gather(arrays)
                specs = inputs.models(cfg.classifiers, fit_name)
                fitted = parallel(delayed(_fit_one)(cfg.make(clf, seed, name), X_all[:, [col_index[c] for c in cols]], y,
                                                    f"repeat {repeat}, fit {fit_name}, {name}/{clf}", log)
                                  for name, clf, cols in specs)
                models.update({(fit_name, name, clf): m for (name, clf, _), m in zip(specs, fitted, strict=True)})
                done += 1
                bar.total = cfg.repeats * len(groups)
                bar.update()
                if log is not None:
                    log.info("repeat %d/%d, fit %s: %d models in %.1f s (%d of %d fit groups done)", repeat + 1,
                             cfg.repeats, fit_name, len(specs), time.perf_counter() - start, done,
                             cfg.repeats * len(groups))
            all_splits.append(splits)
            all_models.append(models)
    return FittedMeta(cfg, inputs, all_splits, all_models, sources)


def _fit_one(model: ThresholdedClassifier, X: np.ndarray, y: np.ndarray, where: str,
             log: logging.Logger | None) -> ThresholdedClassifier:
    try:
        model.fit(X, y)
    except ValueError as exc:
        raise GradmetaError(f"{where}: {exc}") from None
    if not getattr(model, "converged_", True) and log is not None:
        log.warning("%s: logistic regression did not converge in %d iterations", where, model.max_iter)
    return model
