"""The summary table of results and the one way to look cells up in it.

``summary`` has one row per result key (scenario, test set, group, input, classifier) with
``<measure>_mean`` and ``<measure>_std`` over the repeated splits; ``group`` is "" outside the
known-unknowns scenario.
"""

from __future__ import annotations

import pandas as pd

from gradmeta.evaluation.measures import measure_names

RESULT_KEYS = ("scenario", "test_set", "group", "input", "classifier")


def summarize_results(results: pd.DataFrame, keys: tuple[str, ...] = RESULT_KEYS,
                      measures: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Mean and sample std (ddof=1) over repeats of every measure, one row per result key
    (``<measure>_mean``, ``<measure>_std``); ``measures``: every registered one unless given."""
    grouped = results.groupby(list(keys), sort=False)[list(measure_names() if measures is None else measures)]
    mean = grouped.mean()
    std = grouped.std(ddof=1).fillna(0.0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{m}_{stat}" for stat, m in out.columns]
    return out.reset_index()


def select(summary: pd.DataFrame, **keys: str) -> pd.DataFrame:
    """The rows whose result keys equal the given values (``select(s, scenario="unknown", input=...)``)."""
    mask = pd.Series(True, index=summary.index)
    for key, value in keys.items():
        mask &= summary[key] == value
    return summary[mask]


def summary_row(summary: pd.DataFrame, scenario: str, test_set: str, group: str, inp: str,
                clf: str) -> pd.Series | None:
    """The one row of a result key, or None if that cell was not computed."""
    hit = select(summary, scenario=scenario, test_set=test_set, group=group, input=inp, classifier=clf)
    return None if hit.empty else hit.iloc[0]


def cnn_context(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Per concept: CNN accuracy and error count on its evaluation rows (unknowns: always 0 correct)."""
    out = {}
    for c, f in frames.items():
        correct = f["correct"].to_numpy()
        out[c] = {"cnn_accuracy": float(correct.mean()), "cnn_errors": int((~correct).sum()), "rows": len(f)}
    return out
