"""The report's "gradient metrics vs the field" table: the field's detectors as single scores beside
the softmax and GradNorm baselines, the gradient meta classifiers and a meta classifier over detectors
and gradient metrics together; per scenario and unknown concept, mean ± std over the repeats.

Pooled unknown-concept columns add the two FPR@95%TPR conventions, named by their positive class
(correct = in-distribution positive, as Hendrycks & Gimpel and ODIN; wrong = OOD positive, as
OpenOOD and pytorch-ood), and AUPR-In / AUPR-Out.
"""

from __future__ import annotations

import pandas as pd

from gradmeta.evaluation.cells import cell
from gradmeta.meta.classifiers import THRESHOLD

FIELD_TABLE_START = "<!-- field-table:start -->"
FIELD_TABLE_END = "<!-- field-table:end -->"
BASELINES = ("softmax/entropy", "baseline/gradnorm")
FIELD_SETS = ("gradient", "gradient_targets", "detectors", "detectors+gradient")
POOLED = (("auroc", "pooled AUROC"), ("fpr_at_95tpr_correct_positive", "FPR@95 (in-dist. positive)"),
          ("fpr_at_95tpr_wrong_positive", "FPR@95 (OOD positive)"), ("aupr_correct_positive", "AUPR-In"),
          ("aupr_wrong_positive", "AUPR-Out"))


def field_rows(single: list[str], sets: list[str], primary: str) -> list[tuple[str, str]]:
    """(input, classifier) rows: baselines, every ``detector/*`` single score, then the feature sets of
    FIELD_SETS that exist, with the primary classifier."""
    rows = [(m, THRESHOLD) for m in BASELINES if m in single]
    rows += [(m, THRESHOLD) for m in single if m.startswith("detector/")]
    rows += [(s, primary) for s in FIELD_SETS if s in sets]
    return rows


def field_table(summary: pd.DataFrame, rows: list[tuple[str, str]], known: str, unknowns: list[str],
                unstable_std: float | None = None) -> str:
    """The markdown table, one row per (input, classifier); AUROC cells with a std above
    ``unstable_std`` are marked."""
    head = (["input", "classifier", "misclass. AUROC", *[f"{c} AUROC" for c in unknowns],
             *[label for _, label in POOLED], "known unknowns (seen), pooled AUROC"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for inp, clf in rows:
        cells = [f"`{inp}`", clf, cell(summary, "misclassification", known, "", inp, clf, "auroc", unstable_std)]
        cells += [cell(summary, "unknown", c, "", inp, clf, "auroc", unstable_std) for c in unknowns]
        cells += [cell(summary, "unknown", "pooled", "", inp, clf, m, unstable_std) for m, _ in POOLED]
        cells.append(cell(summary, "known_unknowns", "pooled", "seen", inp, clf, "auroc", unstable_std))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def field_section(summary: pd.DataFrame, rows: list[tuple[str, str]], known: str, unknowns: list[str],
                  unstable_std: float | None = None) -> list[str]:
    """The report section, table between markers (the README copies it)."""
    if not any(inp.startswith("detector/") or inp in FIELD_SETS[1:] for inp, _ in rows):
        return []
    return ["## Gradient metrics vs the field", "",
            ("Single scores (no training: each detector and baseline with its own sign, higher = in-distribution; "
             "the threshold from meta-train) and meta classifiers on the same CNN, rows and splits. Unknown-concept "
             "columns: {known}-only fit, {known}-correct rows vs that "
             "concept; pooled: all {known} meta-test rows and every unknown row, correct vs wrong. FPR@95: "
             "the share of the other class let through when 95% of the positive class is caught, for both "
             "choices of positive class. Lower FPR is better, higher AUROC and AUPR are better.").replace(
                "{known}", known), "",
            FIELD_TABLE_START, field_table(summary, rows, known, unknowns, unstable_std), FIELD_TABLE_END, ""]
