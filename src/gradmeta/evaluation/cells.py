"""One table cell of the report: a measure's mean ± std over the repeats, marked when unstable."""

from __future__ import annotations

import pandas as pd

from gradmeta.evaluation.summary import summary_row

UNSTABLE_MARK = "†"


def cell(summary: pd.DataFrame, scenario: str, test_set: str, group: str, inp: str, clf: str,
         measure: str = "auroc", unstable_std: float | None = None) -> str:
    """'mean ± std' (3 decimals) of ``measure`` in one result cell, '–' where it was not computed;
    an AUROC cell whose std exceeds ``unstable_std`` ends with UNSTABLE_MARK."""
    r = summary_row(summary, scenario, test_set, group, inp, clf)
    if r is None:
        return "–"
    unstable = measure == "auroc" and unstable_std is not None and r[f"{measure}_std"] > unstable_std
    return f"{r[f'{measure}_mean']:.3f} ± {r[f'{measure}_std']:.3f}{UNSTABLE_MARK if unstable else ''}"


def unstable_note(unstable_std: float) -> str:
    """The legend of UNSTABLE_MARK."""
    return (f"{UNSTABLE_MARK} marks an AUROC cell whose std over the splits exceeds {unstable_std:g} "
            "(`evaluate.unstable_std`): its value depends on the split more than on the inputs.")
