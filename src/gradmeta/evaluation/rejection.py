"""The ``rejection`` scenario: one rejection for both failures (selective classification with unknown
concepts; SIRC, Xia & Bouganis, ACCV 2022): accept = a known-concept image classified correctly;
reject = a known-concept image classified wrongly, or any image of an unknown concept.

Test mixture per repeat: every known-concept meta-test row plus unknown-concept meta-test rows, as many
as ``ratio`` times the known meta-test rows (at most what there are), drawn with the repeat's seed:
from one concept per concept's cell, from all unknown concepts together for ``pooled``. Each cell is
scored with two settings of the meta classifiers, fitted on the rejection target itself (unknown rows
are wrong): ``known_only`` (the known concept's meta-train rows alone) and known unknowns (leave one out:
``unseen``, the fit without that concept; ``pooled`` uses the fit that saw every unknown concept,
``seen``; with a listed ``meta.known_unknowns``, the ``listed`` fit). Single scores, DOCTOR, SIRC and
REL-U are fitted on the known concept only and appear in ``known_only``.

Measures per cell (:mod:`.risk`): AUROC (accept = positive), AURC, AUGRC and the selective risk at
80 / 90 / 95 % coverage; mean ± std over the repeats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradmeta.evaluation.measures import measure_all
from gradmeta.evaluation.risk import RISK_MEASURES, risk_measures
from gradmeta.evaluation.scoring import score_cells
from gradmeta.evaluation.summary import summarize_results
from gradmeta.meta.fitting import FittedMeta
from gradmeta.meta.scenarios import LEAVE_ONE_OUT, RowSet, ScenarioCell, Split

REJECTION = "rejection"
KNOWN_ONLY = "known_only"
MEASURES = ("auroc", *RISK_MEASURES)
KEYS = ("test_set", "group", "input", "classifier")


def _draw(parts: list[tuple[str, np.ndarray]], size: int, seed: int) -> tuple[tuple[str, np.ndarray], ...]:
    """``size`` of the rows of ``parts`` (all if fewer), seeded, each concept's positions kept in order."""
    owners = np.concatenate([np.full(len(pos), i) for i, (_, pos) in enumerate(parts)])
    flat = np.concatenate([pos for _, pos in parts])
    if size < len(flat):
        chosen = np.sort(np.random.Generator(np.random.PCG64(seed)).choice(len(flat), size=size, replace=False))
        owners, flat = owners[chosen], flat[chosen]
    return tuple((parts[i][0], flat[owners == i]) for i in range(len(parts)) if (owners == i).any())


def rejection_cells(known: str, unknowns: list[str], known_unknowns: str | tuple[str, ...], splits: dict[str, Split],
                    ratio: float, seed: int) -> list[ScenarioCell]:
    """The rejection cells of one repeat (module docstring); ``seed``: the repeat's."""
    known_rows = (known, splits[known].test)
    size = int(round(ratio * len(splits[known].test)))
    cells = []
    for i, c in enumerate(unknowns):
        rows = RowSet((known_rows, *_draw([(c, splits[c].test)], size, seed + 7919 * (i + 1))))
        cells.append(ScenarioCell(REJECTION, c, KNOWN_ONLY, "known", rows))
        if known_unknowns == LEAVE_ONE_OUT:
            cells.append(ScenarioCell(REJECTION, c, "unseen", f"without_{c}", rows))
        else:
            cells.append(ScenarioCell(REJECTION, c, "seen" if c in known_unknowns else "unseen", "listed", rows))
    if unknowns:
        pooled = RowSet((known_rows, *_draw([(c, splits[c].test) for c in unknowns], size, seed)))
        cells.append(ScenarioCell(REJECTION, "pooled", KNOWN_ONLY, "known", pooled))
        fit, group = ("all_seen", "seen") if known_unknowns == LEAVE_ONE_OUT else ("listed", "listed")
        cells.append(ScenarioCell(REJECTION, "pooled", group, fit, pooled))
    return cells


def rejection_measures(scores: np.ndarray, target: np.ndarray, threshold: float, where: str) -> dict[str, float]:
    """AUROC (accept = positive) and the risk-coverage measures of one cell."""
    return {"auroc": measure_all(scores, target, None, where)["auroc"], **risk_measures(scores, target)}


def score_rejection(frames: dict[str, pd.DataFrame], fitted: FittedMeta, ratio: float,
                    keep_inputs: tuple[tuple[str, str], ...] = ()) -> tuple[pd.DataFrame, dict]:
    """The long table of rejection measures (one row per repeat x cell x model) and the repeat-0 scores
    of ``keep_inputs`` (for the risk-coverage curves)."""
    cfg = fitted.config

    def cells(repeat: int, splits: dict[str, Split]) -> list[ScenarioCell]:
        return rejection_cells(cfg.known_concept, list(cfg.unknown_concepts), cfg.known_unknowns, splits, ratio,
                               cfg.seed + repeat)

    return score_cells(frames, fitted, cells, rejection_measures, keep_inputs)


def summarize_rejection(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over repeats of every rejection measure, one row per (test set, setting, input,
    classifier); no rows (but the columns) where there was nothing to score (no unknown concept)."""
    if results.empty:
        return pd.DataFrame(columns=_summary_columns())
    return summarize_results(results, KEYS, MEASURES)


def _summary_columns() -> list[str]:
    return [*KEYS, *(f"{m}_{s}" for m in MEASURES for s in ("mean", "std"))]


def rejection_csv(summary: pd.DataFrame) -> str:
    """The rejection summary as CSV text with 6 decimals."""
    return summary[_summary_columns()].to_csv(index=False, float_format="%.6f", lineterminator="\n")
