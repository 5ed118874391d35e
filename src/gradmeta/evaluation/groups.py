"""OOD groups (``evaluate.groups``, e.g. OpenOOD's near- and far-OOD): per-set detection numbers (scenario
``ood``: every known meta-test row, in-distribution, vs one concept's) and, per group, the mean over its
sets of each measure, as OpenOOD averages a group's per-set AUROCs. The mean is taken within each repeat
(meta split), so a group's cell has a mean ± std over the repeats like every other cell.
"""

from __future__ import annotations

import pandas as pd

from gradmeta.evaluation.cells import cell
from gradmeta.evaluation.measures import measure_names
from gradmeta.evaluation.summary import summary_row
from gradmeta.meta.classifiers import THRESHOLD

OOD, OOD_GROUP = "ood", "ood_group"  # scenarios: one concept; the mean over a group's concepts
GROUP_MEASURES = (("auroc", "AUROC"), ("fpr_at_95tpr_wrong_positive", "FPR@95"),
                  ("aupr_correct_positive", "AUPR-In"), ("aupr_wrong_positive", "AUPR-Out"))
GROUPS_START = "<!-- ood-groups:start -->"
GROUPS_END = "<!-- ood-groups:end -->"


def single_score_rows(single: list[str], named_single: list[str]) -> list[tuple[str, str]]:
    """(input, ``threshold``) of the single scores listed by name and of every ``detector/*`` one, once each."""
    return [(m, THRESHOLD) for m in dict.fromkeys([*named_single, *(m for m in single if m.startswith("detector/"))])]


def group_rows(single: list[str], named_single: list[str], sets: list[str],
               classifiers: tuple[str, ...]) -> list[tuple[str, str]]:
    """(input, classifier) rows of the groups' table: :func:`single_score_rows`, then every feature set with every
    meta classifier."""
    return single_score_rows(single, named_single) + [(s, c) for s in sets for c in classifiers]


def group_results(results: pd.DataFrame, groups: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Rows of scenario ``ood_group``, test set = group name: per repeat, input and classifier, the mean of
    every measure over the group's concepts (rows of scenario ``ood``). Empty when there are no groups."""
    if not groups or results.empty:
        return results.iloc[0:0]
    ood = results[results["scenario"] == OOD]
    out = []
    for name, concepts in groups.items():
        rows = ood[ood["test_set"].isin(concepts)]
        means = rows.groupby(["repeat", "input", "classifier"], sort=False)[list(measure_names())].mean().reset_index()
        sets = rows.groupby(["repeat", "input", "classifier"], sort=False)["test_set"].nunique().to_numpy()
        if (sets != len(concepts)).any():
            raise ValueError(f"group {name}: not every concept of {concepts} was scored")
        out.append(means.assign(scenario=OOD_GROUP, test_set=name, group=""))
    return pd.concat(out, ignore_index=True)[list(results.columns)]


def groups_table(summary: pd.DataFrame, rows: list[tuple[str, str]], groups: dict[str, tuple[str, ...]],
                 unstable_std: float | None = None) -> str:
    """One row per (input, classifier): every group's AUROC, FPR@95 (OOD positive), AUPR-In and AUPR-Out,
    then every set's AUROC."""
    concepts = [c for members in groups.values() for c in members]
    head = ["input", "classifier", *[f"{g} {label}" for g in groups for _, label in GROUP_MEASURES],
            *[f"{c} AUROC" for c in dict.fromkeys(concepts)]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for inp, clf in rows:
        cells = [f"`{inp}`", clf]
        cells += [cell(summary, OOD_GROUP, g, "", inp, clf, m, unstable_std) for g in groups for m, _ in GROUP_MEASURES]
        cells += [cell(summary, OOD, c, "", inp, clf, "auroc", unstable_std) for c in dict.fromkeys(concepts)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def groups_section(summary: pd.DataFrame, rows: list[tuple[str, str]], groups: dict[str, tuple[str, ...]],
                   known: str, unstable_std: float | None = None) -> list[str]:
    """The report section (nothing without groups)."""
    if not groups:
        return []
    listed = "; ".join(f"{g}: {', '.join(f'`{c}`' for c in members)}" for g, members in groups.items())
    return ["## OOD detection by group", "",
            (f"OpenOOD's target: every `{known}` meta-test row is in-distribution (positive, whether the CNN is right "
             f"or not), every row of the set is OOD; a {known}-only fit. Groups ({listed}): each measure is the mean "
             "over the group's sets within a split, then mean ± std over the splits. FPR@95: the share of "
             "in-distribution rows flagged when 95% of the OOD rows are caught (OOD positive, OpenOOD's convention). "
             "Higher AUROC and AUPR are better, lower FPR is better."), "",
            GROUPS_START, groups_table(summary, rows, groups, unstable_std), GROUPS_END, ""]


def groups_headline(summary: pd.DataFrame, rows: list[tuple[str, str]],
                    groups: dict[str, tuple[str, ...]]) -> dict:
    """``{group: {input: {classifier: {auroc, auroc_std, fpr_at_95tpr_wrong_positive}}}}`` for scenarios.json."""
    out: dict = {}
    for name in groups:
        for inp, clf in rows:
            row = summary_row(summary, OOD_GROUP, name, "", inp, clf)
            if row is not None:
                out.setdefault(name, {}).setdefault(inp, {})[clf] = {
                    "auroc": float(row.auroc_mean), "auroc_std": float(row.auroc_std),
                    "fpr_at_95tpr_wrong_positive": float(row.fpr_at_95tpr_wrong_positive_mean)}
    return out
