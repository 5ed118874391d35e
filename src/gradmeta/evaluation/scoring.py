"""Score every fitted meta classifier on the meta-test rows of every scenario."""

from __future__ import annotations

import pandas as pd

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.measures import measure_all
from gradmeta.features import metric_columns
from gradmeta.meta.fitting import FittedMeta
from gradmeta.meta.scenarios import as_arrays, evaluations


def score_all(frames: dict[str, pd.DataFrame], fitted: FittedMeta,
              roc_inputs: tuple[tuple[str, str], ...] = ()) -> tuple[pd.DataFrame, dict]:
    """Long table of measures (one row per repeat x scenario x test set x input x classifier), and
    the scores of repeat 0 for ``roc_inputs`` (input, classifier) on each test set, for ROC plots."""
    cfg = fitted.config
    known = cfg.known_concept
    cols = metric_columns(frames[known])
    col_index = {c: i for i, c in enumerate(cols)}
    arrays = as_arrays({c: frames[c] for c in (known, *cfg.unknown_concepts)}, cols)
    rows, roc = [], {}
    for repeat, (splits, models) in enumerate(zip(fitted.splits, fitted.models)):
        for ev in evaluations(frames, known, list(cfg.unknown_concepts), cfg.known_unknowns, splits):
            X_all, y = ev.rows.gather(arrays)
            for (fit_name, name, clf), model in models.items():
                if fit_name != ev.fit:
                    continue
                scores = model.score_samples(X_all[:, [col_index[c] for c in fitted.inputs.columns_of(name)]])
                where = f"scenario {ev.scenario}, test set {ev.test_set}"
                try:
                    measures = measure_all(scores, y, model.threshold_, where)
                except GradmetaError as exc:
                    raise GradmetaError(f"{exc} (repeat {repeat})") from None
                rows.append({"repeat": repeat, "scenario": ev.scenario, "test_set": ev.test_set,
                             "group": ev.group or "", "input": name, "classifier": clf, **measures})
                if repeat == 0 and (name, clf) in roc_inputs:
                    roc[(ev.scenario, ev.test_set, ev.group or "", name, clf)] = (scores, y)
    return pd.DataFrame(rows), roc
