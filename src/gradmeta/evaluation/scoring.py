"""Score every fitted meta classifier on the meta-test rows of every scenario."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.measures import measure_all
from gradmeta.features import metric_columns
from gradmeta.meta.fitting import FittedMeta
from gradmeta.meta.scenarios import IN_DISTRIBUTION, ScenarioCell, as_arrays, evaluations, ood_evaluations


def score_all(frames: dict[str, pd.DataFrame], fitted: FittedMeta,
              roc_inputs: tuple[tuple[str, str], ...] = (), ood_concepts: tuple[str, ...] = ()) -> tuple[pd.DataFrame, dict]:
    """Long table of measures (one row per repeat x scenario x test set x input x classifier), and
    the scores of repeat 0 for ``roc_inputs`` (input, classifier) on each test set, for ROC plots.
    ``ood_concepts`` add OpenOOD's detection cells (scenario ``ood``) for those unknown concepts."""
    cfg = fitted.config

    def cells(repeat: int, splits: dict) -> list[ScenarioCell]:
        return (evaluations(frames, cfg.known_concept, list(cfg.unknown_concepts), cfg.known_unknowns, splits)
                + ood_evaluations(cfg.known_concept, list(ood_concepts), splits))

    return score_cells(frames, fitted, cells, measure_all, roc_inputs)


Measure = Callable[[np.ndarray, np.ndarray, float, str], dict[str, float]]


def score_cells(frames: dict[str, pd.DataFrame], fitted: FittedMeta,
                cells: Callable[[int, dict], list[ScenarioCell]], measure: Measure,
                keep_inputs: tuple[tuple[str, str], ...] = ()) -> tuple[pd.DataFrame, dict]:
    """Every fitted model of each repeat on the test rows of the cells ``cells(repeat, splits)`` that
    use its fit: one row of ``measure(scores, target, threshold, where)`` per (repeat, cell, model),
    and the scores of repeat 0 of ``keep_inputs`` (input, classifier), keyed (scenario, test set,
    group, input, classifier)."""
    cfg = fitted.config
    known = cfg.known_concept
    cols = metric_columns(frames[known])
    col_index = {c: i for i, c in enumerate(cols)}
    arrays = as_arrays({c: frames[c] for c in (known, *cfg.unknown_concepts)}, cols)
    rows, kept = [], {}
    for repeat, (splits, models) in enumerate(zip(fitted.splits, fitted.models)):
        for ev in cells(repeat, splits):
            X_all, y = ev.rows.gather(arrays)
            if ev.target == IN_DISTRIBUTION:
                y = ev.rows.in_distribution(known)
            for (fit_name, name, clf), model in models.items():
                if fit_name != ev.fit:
                    continue
                scores = model.score_samples(X_all[:, [col_index[c] for c in fitted.inputs.columns_of(name)]])
                where = f"scenario {ev.scenario}, test set {ev.test_set}"
                try:
                    measures = measure(scores, y, model.threshold_, where)
                except GradmetaError as exc:
                    raise GradmetaError(f"{exc} (repeat {repeat})") from None
                rows.append({"repeat": repeat, "scenario": ev.scenario, "test_set": ev.test_set,
                             "group": ev.group or "", "input": name, "classifier": clf, **measures})
                if repeat == 0 and (name, clf) in keep_inputs:
                    kept[(ev.scenario, ev.test_set, ev.group or "", name, clf)] = (scores, y)
    return pd.DataFrame(rows), kept
