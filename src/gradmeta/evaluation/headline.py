"""``metrics/headline.json``: the few numbers ``dvc exp show`` and ``dvc metrics diff`` show, with short
names, so a comparison of experiments fits a 120-column terminal beside the changed params
(``metrics/scenarios.json``, ``measures.csv`` and the report keep the detail).

Keys (AUROC means over the meta splits, each with its sample std as ``<key>_std``; 4 decimals):

- ``cnn_error``: the CNN's error rate on the known concept's evaluation (test) rows;
- ``mis_entropy``: misclassification AUROC of entropy (``softmax/entropy``, thresholded);
- ``mis_meta``: misclassification AUROC of the primary meta classifier on the headline feature set (the
  set with the most columns, as the rejection headline);
- ``ood_best``: pooled unknown-concept AUROC of the best single score (highest mean; named in the report's
  "Who wins");
- ``ood_meta``: pooled unknown-concept AUROC of the primary meta classifier on the headline set
  (known-concept-only fit).

A key whose cell was not scored (entropy left out of ``meta.single_metrics``, no feature set) is absent.
"""

from __future__ import annotations

import pandas as pd

from gradmeta.core.atomic import round_floats
from gradmeta.evaluation.claims import ENTROPY
from gradmeta.evaluation.summary import summary_row
from gradmeta.evaluation.winners import ScenarioWinners
from gradmeta.meta.classifiers import THRESHOLD

MAX_KEY_LENGTH = 16  # a column of `dvc exp show` is as wide as its name


def _mean_std(out: dict, key: str, mean: float, std: float) -> None:
    out[key] = float(mean)
    out[f"{key}_std"] = float(std)


def headline_metrics(summary: pd.DataFrame, winners: list[ScenarioWinners], known: str, cnn_accuracy: float,
                     primary: str, headline_set: str | None) -> dict[str, float]:
    """The headline dictionary (module docstring); ``winners`` from :func:`~.winners.scenario_winners`."""
    out: dict[str, float] = {"cnn_error": 1.0 - float(cnn_accuracy)}
    best = next((w.single for w in winners if w.cell == ("unknown", "pooled", "")), None)
    cells = [("mis_entropy", "misclassification", known, ENTROPY, THRESHOLD),
             ("mis_meta", "misclassification", known, headline_set, primary),
             ("ood_best", "unknown", "pooled", best and best.input, THRESHOLD),
             ("ood_meta", "unknown", "pooled", headline_set, primary)]
    for key, scenario, test_set, inp, clf in cells:
        row = None if inp is None else summary_row(summary, scenario, test_set, "", inp, clf)
        if row is not None:
            _mean_std(out, key, row.auroc_mean, row.auroc_std)
    return round_floats(out)
