"""Who wins: per scenario, the best single score and the best meta classifier, each with its AUROC (mean ±
std over the meta splits) and its paired difference against entropy on the same rows.

The paired difference is taken split by split: for each repeat r, d_r = AUROC_r(input) - AUROC_r(entropy)
on that repeat's meta-test rows; the line shows the mean ± sample std (ddof=1) of d over the repeats, not
a difference of two means (the splits move both AUROCs together, so the difference is tighter than either).

"Best" is the highest mean AUROC over the splits among the cells of a kind (single scores: classifier
``threshold``; meta classifiers: every feature set x classifier). It is chosen on the meta-test rows it is
reported on, as a leaderboard is: read it as a ranking, not as a held-out selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradmeta.evaluation.claims import ENTROPY
from gradmeta.evaluation.groups import OOD_GROUP
from gradmeta.meta.classifiers import THRESHOLD

WINNERS_START = "<!-- winners:start -->"
WINNERS_END = "<!-- winners:end -->"

Cell = tuple[str, str, str]  # (scenario, test set, group)


@dataclass(frozen=True)
class Standing:
    """One input's AUROC in a scenario (mean ± std over the splits) and its paired gain over entropy
    (mean ± std of the per-split difference; None where entropy was not scored)."""

    input: str
    classifier: str
    mean: float
    std: float
    gain_mean: float | None = None
    gain_std: float | None = None


@dataclass(frozen=True)
class ScenarioWinners:
    """A scenario's line: what it is, entropy's AUROC there, the best single score, the best meta classifier."""

    title: str
    cell: Cell
    entropy: Standing | None
    single: Standing | None
    meta: Standing | None


def winner_cells(known: str, groups: tuple[str, ...] = ()) -> list[tuple[str, Cell, Cell]]:
    """(title, cell, entropy's cell) of every scenario with a line. Known unknowns pool the same meta-test
    rows as the unknown scenario's pooled cell (every known and unknown meta-test row), where entropy, a
    single score, is scored."""
    unknown_pooled = ("unknown", "pooled", "")
    out = [(f"misclassification ({known}, correct vs wrong)", ("misclassification", known, ""),
            ("misclassification", known, "")),
           (f"unknown concepts, pooled ({known}-only fit)", unknown_pooled, unknown_pooled),
           ("known unknowns, pooled (fit saw every unknown concept)", ("known_unknowns", "pooled", "seen"),
            unknown_pooled)]
    out += [(f"OOD group {g} (OpenOOD's target)", (OOD_GROUP, g, ""), (OOD_GROUP, g, "")) for g in groups]
    return out


def _aurocs(results: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    scenario, test_set, group = cell
    hit = results[(results.scenario == scenario) & (results.test_set == test_set) & (results.group == group)]
    return hit[["repeat", "input", "classifier", "auroc"]]


def _mean_std(values: pd.Series) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for one split) over the splits."""
    v = values.to_numpy(dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def paired_gain(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for one split) of a - b, both AUROCs indexed by repeat (the same repeats)."""
    if sorted(a.index) != sorted(b.index):
        raise ValueError(f"paired difference over different splits: {sorted(a.index)} vs {sorted(b.index)}")
    return _mean_std(a - b.reindex(a.index))


def _standing(rows: pd.DataFrame, inp: str, clf: str, entropy: pd.Series | None) -> Standing:
    own = rows[(rows.input == inp) & (rows.classifier == clf)].set_index("repeat")["auroc"]
    gain = paired_gain(own, entropy) if entropy is not None else (None, None)
    return Standing(inp, clf, *_mean_std(own), *gain)


def _best(rows: pd.DataFrame) -> tuple[str, str] | None:
    """The (input, classifier) of the highest mean AUROC; a tie goes to the first scored."""
    if rows.empty:
        return None
    means = rows.groupby(["input", "classifier"], sort=False)["auroc"].mean()
    return means.index[int(np.argmax(means.to_numpy()))]


def scenario_winners(results: pd.DataFrame, known: str, groups: tuple[str, ...] = ()) -> list[ScenarioWinners]:
    """One :class:`ScenarioWinners` per scenario of :func:`winner_cells` that was scored; ``results`` is the
    long table of the scoring (one row per repeat x scenario x test set x group x input x classifier)."""
    out = []
    for title, cell, entropy_cell in winner_cells(known, groups):
        rows = _aurocs(results, cell)
        if rows.empty:
            continue
        reference = _aurocs(results, entropy_cell)
        reference = reference[reference.classifier == THRESHOLD]  # the single scores of entropy's cell
        has_entropy = (reference.input == ENTROPY).any()
        entropy = reference[reference.input == ENTROPY].set_index("repeat")["auroc"] if has_entropy else None
        single_rows, meta_rows = rows[rows.classifier == THRESHOLD], rows[rows.classifier != THRESHOLD]
        if single_rows.empty:  # known unknowns: the single scores need no fit, so they are those of entropy's cell
            single_rows = reference
        single = None if (pick := _best(single_rows)) is None else _standing(single_rows, *pick, entropy)
        meta = None if (pick := _best(meta_rows)) is None else _standing(meta_rows, *pick, entropy)
        own = _standing(reference, ENTROPY, THRESHOLD, None) if has_entropy else None
        out.append(ScenarioWinners(title, cell, own, single, meta))
    return out


def _auroc(s: Standing) -> str:
    return f"{s.mean:.3f} ± {s.std:.3f}"


def _named(s: Standing | None, kind: str) -> str:
    if s is None:
        return f"no {kind} scored"
    who = f"`{s.input}`" + ("" if s.classifier == THRESHOLD else f" ({s.classifier})")
    if s.input == ENTROPY and s.classifier == THRESHOLD:
        return f"best {kind} {who} {_auroc(s)} (entropy itself)"
    gain = "" if s.gain_mean is None else f" (vs entropy {s.gain_mean:+.3f} ± {s.gain_std:.3f})"
    return f"best {kind} {who} {_auroc(s)}{gain}"


def winner_lines(winners: list[ScenarioWinners]) -> list[str]:
    """The report's opening lines (markdown, between markers the README copies): one per scenario."""
    if not winners:
        return []
    lines = ["## Who wins", "",
             ("AUROC, mean ± std over the meta splits. In brackets: the paired difference against entropy "
              "(`softmax/entropy`) on the same rows, mean ± std over the splits of the per-split difference. "
              "Best = the highest mean AUROC of its kind on these rows (a ranking, not a held-out choice)."), "",
             WINNERS_START]
    for w in winners:
        entropy = "entropy not scored" if w.entropy is None else f"entropy {_auroc(w.entropy)}"
        lines.append(f"- **{w.title}**: {_named(w.single, 'single score')}; {_named(w.meta, 'meta classifier')}; "
                     f"{entropy}.")
    return [*lines, WINNERS_END, ""]
