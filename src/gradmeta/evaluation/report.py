"""The paper-style markdown report (``metrics/report.md``) and the README results section made from it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from gradmeta.core.atomic import round_floats, write_bytes
from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.cells import cell, unstable_note
from gradmeta.evaluation.claims import COMBINED, ENTROPY, Verdict
from gradmeta.evaluation.field import FIELD_TABLE_END, FIELD_TABLE_START
from gradmeta.evaluation.measures import measure_names
from gradmeta.evaluation.provenance import DATA_END, DATA_START
from gradmeta.evaluation.summary import select, summary_row
from gradmeta.evaluation.winners import WINNERS_END, WINNERS_START
from gradmeta.meta.classifiers import THRESHOLD, documented_sign

RESULTS_START = "<!-- results:start (generated from metrics/report.md by `gradmeta readme-results`) -->"
RESULTS_END = "<!-- results:end -->"
MAIN_TABLE_START = "<!-- main-table:start -->"
MAIN_TABLE_END = "<!-- main-table:end -->"
def unstable_claim_lines(verdicts: list[Verdict], unstable_std: float) -> list[str]:
    """One line per claim whose verdict rests on cells with an AUROC std above ``unstable_std``."""
    lines = []
    for v in verdicts:
        cells = v.unstable(unstable_std)
        if cells:
            lines.append(f"({v.claim}) rests on {len(cells)} cell(s) with an AUROC std above {unstable_std:g}: "
                         + ", ".join(cells))
    return lines


def _group_mean(summary: pd.DataFrame, group: str, unknowns: list[str], inp: str, clf: str) -> str:
    hit = select(summary, scenario="known_unknowns", group=group, input=inp, classifier=clf)
    hit = hit[hit.test_set.isin(unknowns)]
    if hit.empty:
        return "–"
    return f"{hit.auroc_mean.mean():.3f}"


def main_table(summary: pd.DataFrame, rows: list[tuple[str, str]], known: str, unknowns: list[str],
               unstable_std: float | None = None) -> str:
    """Rows: inputs; columns: misclassification accuracy/AUROC, AUROC per unknown concept and pooled
    (digits-only), known-unknowns AUROC averaged over concepts, seen / unseen."""
    head = (["input", "classifier", "misclass. accuracy", "misclass. AUROC"]
            + [f"{c} AUROC" for c in unknowns] + ["pooled AUROC", "known unknowns: seen", "unseen"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for inp, clf in rows:
        cells = [f"`{inp}`", clf, cell(summary, "misclassification", known, "", inp, clf, "accuracy"),
                 cell(summary, "misclassification", known, "", inp, clf, unstable_std=unstable_std)]
        cells += [cell(summary, "unknown", c, "", inp, clf, unstable_std=unstable_std) for c in unknowns]
        cells += [cell(summary, "unknown", "pooled", "", inp, clf, unstable_std=unstable_std),
                  _group_mean(summary, "seen", unknowns, inp, clf), _group_mean(summary, "unseen", unknowns, inp, clf)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def single_metric_table(summary: pd.DataFrame, known: str, unknowns: list[str],
                        unstable_std: float | None = None) -> str:
    """Every single metric (threshold), sorted by misclassification AUROC, with the sign convention
    each follows (:func:`sign_convention`)."""
    mis = select(summary, scenario="misclassification", classifier=THRESHOLD)
    mis = mis.sort_values("auroc_mean", ascending=False)
    head = ["metric", "sign", "misclass. accuracy", "misclass. AUROC", *[f"{c} AUROC" for c in unknowns],
            "pooled AUROC"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for inp in mis.input:
        cells = [f"`{inp}`", sign_convention(inp),
                 cell(summary, "misclassification", known, "", inp, THRESHOLD, "accuracy"),
                 cell(summary, "misclassification", known, "", inp, THRESHOLD, unstable_std=unstable_std)]
        cells += [cell(summary, "unknown", t, "", inp, THRESHOLD, unstable_std=unstable_std)
                  for t in [*unknowns, "pooled"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sign_convention(metric: str) -> str:
    """How a single score's orientation is set: ``own`` (a detector's or baseline's documented sign,
    higher = in-distribution, as OpenOOD and pytorch-ood use it) or ``meta-train`` (a raw metric's
    sign, chosen on the meta-train rows)."""
    return "own" if documented_sign(metric) is not None else "meta-train"


def render_report(*, data_lines: list[str], field_lines: list[str], summary: pd.DataFrame, context: dict,
                  main_rows: list[tuple[str, str]],
                  known: str, unknowns: list[str], verdicts: list[Verdict], notes: list[str], repeats: int,
                  test_fraction: float, figures: list[str], unstable_std: float = 0.05,
                  winner_lines: list[str] = ()) -> str:
    """The whole report as markdown; AUROC cells whose std exceeds ``unstable_std`` are marked. It opens
    (after the data and the CNN) with ``winner_lines``, one per scenario (:mod:`.winners`)."""
    cnn = context[known]
    out = [
        "# gradmeta report: meta classification from gradient metrics", "", *data_lines, "",
        f"CNN on `{known}` test split: accuracy {cnn['cnn_accuracy']:.4f}, {cnn['cnn_errors']} wrong of {cnn['rows']}. "
        + "Unknown concepts: " + ", ".join(f"`{c}` ({context[c]['rows']} images)" for c in unknowns) + ".",
        "", *winner_lines,
        (f"Every number is the mean ± sample std over {repeats} random meta-train/meta-test splits "
         f"({test_fraction:.0%} of each concept's rows held out for meta-test). {unstable_note(unstable_std)}"),
        "",
        "## Main table", "",
        (f"Accuracy uses the threshold chosen on meta-train. Unknown-concept columns: {known}-only meta "
         "classifier, known-correct rows vs that concept. Known unknowns: AUROC averaged over the unknown "
         "concepts, `seen` = trained with meta-train rows of that concept, `unseen` = left out."), "",
        MAIN_TABLE_START, main_table(summary, main_rows, known, unknowns, unstable_std), MAIN_TABLE_END, "",
        "## The paper's claims", "",
    ]
    for v in verdicts:
        out += [f"- **({v.claim}) {v.word}.** {v.statement} {v.evidence}."]
    out += [f"- {n}" for n in notes if n]
    out += [f"- {line}." for line in unstable_claim_lines(verdicts, unstable_std)]
    out += ["", *field_lines]
    out += ["## Every single metric (no training: threshold from meta-train)", "",
            ("`sign`: `own` = the score's documented sign (detectors and baselines: higher = in-distribution, "
             "as OpenOOD and pytorch-ood use them); `meta-train` = a raw metric, oriented on the meta-train "
             "rows (the AUROC >= 0.5 side). The threshold for accuracy always comes from meta-train."), "",
            single_metric_table(summary, known, unknowns, unstable_std), "",
            "## Measures", "",
            ("Target 1 = the CNN's prediction is correct, 0 = wrong (every unknown-concept image is wrong). "
             "Scores are higher = more likely correct. `auroc`: area under the ROC curve. "
             "`aupr_wrong_positive` / `aupr_correct_positive`: average precision with that class positive. "
             "`fpr_at_95tpr_correct_positive`: share of wrong rows accepted at the first threshold accepting "
             "95% of correct rows (in-distribution positive); `fpr_at_95tpr_wrong_positive`: share of correct "
             "rows rejected at the first threshold rejecting 95% of wrong rows (OOD positive, as OpenOOD). "
             "All measures of every cell are in `metrics/measures.csv`."), "",
            "## Figures", ""]
    out += [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(out) + "\n"


def measures_csv(summary: pd.DataFrame) -> str:
    """The full summary (every measure, mean and std) as CSV text with 6 decimals."""
    cols = ["scenario", "test_set", "group", "input", "classifier"] + [f"{m}_{s}" for m in measure_names()
                                                                       for s in ("mean", "std")]
    return summary[cols].to_csv(index=False, float_format="%.6f", lineterminator="\n")


def readme_section(report_text: str) -> str:
    """The README results block: the report's data section, main table and claims, between markers."""
    data = re.search(re.escape(DATA_START) + r"\n(.*?)\n" + re.escape(DATA_END), report_text, re.DOTALL)
    banner = data.group(1) if data else ""
    table = re.search(re.escape(MAIN_TABLE_START) + r"\n(.*?)\n" + re.escape(MAIN_TABLE_END), report_text, re.DOTALL)
    claims = re.search(r"## The paper's claims\n\n(.*?)\n\n## ", report_text, re.DOTALL)
    if table is None or claims is None:
        raise GradmetaError("metrics/report.md: main table or claims section not found")
    field = re.search(re.escape(FIELD_TABLE_START) + r"\n(.*?)\n" + re.escape(FIELD_TABLE_END), report_text, re.DOTALL)
    field_part = ["**Gradient metrics vs the field** (pooled: all known meta-test rows and every unknown row, "
                  "correct vs wrong; full description in the report):", "",
                  field.group(1), ""] if field else []
    winners = re.search(re.escape(WINNERS_START) + r"\n(.*?)\n" + re.escape(WINNERS_END), report_text, re.DOTALL)
    winners_part = ["**Who wins** (AUROC mean ± std over the meta splits; in brackets the paired difference "
                    "against entropy on the same rows):", "", winners.group(1), ""] if winners else []
    return "\n".join([RESULTS_START, "", banner, "", *winners_part, table.group(1), "", claims.group(1), "", *field_part,
                      "Full report with figures: [metrics/report.md](metrics/report.md).", "", RESULTS_END])


_RESULTS_BLOCK = re.compile(re.escape(RESULTS_START) + r".*?" + re.escape(RESULTS_END), re.DOTALL)


def readme_with_results(readme_text: str, report_text: str) -> str:
    """The README text with its results block made anew from the report text."""
    if not _RESULTS_BLOCK.search(readme_text):
        raise GradmetaError(f"README: no results block ({RESULTS_START} ... {RESULTS_END})")
    return _RESULTS_BLOCK.sub(lambda _: readme_section(report_text), readme_text)


def update_readme(readme: str | os.PathLike[str], report: str | os.PathLike[str], check: bool = False) -> bool:
    """Make the README's results block from the report; True if it was stale. With ``check`` the
    file is left as it is (only the answer is given)."""
    readme_p, report_p = Path(readme), Path(report)
    if not report_p.is_file():
        raise GradmetaError(f"{report_p}: report not found (run dvc repro first)")
    if not readme_p.is_file():
        raise GradmetaError(f"{readme_p}: README not found (run gradmeta readme-results in the repository, or give "
                            "--readme)")
    text = readme_p.read_text()
    new = readme_with_results(text, report_p.read_text())
    if new != text and not check:
        write_bytes(readme_p, new.encode())
    return new != text


def scenarios_json(summary: pd.DataFrame, context: dict, known: str, unknowns: list[str], primary: str,
                   feature_sets: list[str], verdicts: list[Verdict]) -> dict:
    """The scenarios' numbers (``dvc metrics diff --targets metrics/scenarios.json``; ``headline.json`` holds the
    few that ``dvc exp show`` shows; every measure of every input is in measures.csv and the report): the
    CNN's accuracy and errors; the claims (1 = holds, 0 = does not, -1 = n/a); AUROC (mean, and std over
    the splits as ``auroc_std``) of entropy and of every feature set with the primary classifier on the
    misclassification, pooled-unknown and pooled known-unknowns test sets; of entropy and entropy+gradient
    per unknown concept. 4 decimals."""
    out: dict = {"cnn": {known: {"accuracy": context[known]["cnn_accuracy"], "errors": context[known]["cnn_errors"]}},
                 "claims": {v.claim: -1 if v.holds is None else int(v.holds) for v in verdicts}}
    headline = [(ENTROPY, THRESHOLD)] + [(name, primary) for name in feature_sets]
    pooled = [("misclassification", known, ""), ("unknown", "pooled", ""), ("known_unknowns", "pooled", "seen"),
              ("known_unknowns", "pooled", "listed")]
    for scenario, test_set, group in pooled:
        _put(out, summary, scenario, test_set, group, headline, ("auroc",))
    per_concept = [(ENTROPY, THRESHOLD), (COMBINED, primary)]
    for concept in unknowns:
        _put(out, summary, "unknown", concept, "", per_concept, ("auroc",))
    return round_floats(out)


def _put(out: dict, summary: pd.DataFrame, scenario: str, test_set: str, group: str,
         inputs: list[tuple[str, str]], measures: tuple[str, ...]) -> None:
    """out[scenario][(group)][test_set][input][classifier][measure] = mean and [measure_std] = std over the
    splits, for the cells that exist."""
    for inp, clf in inputs:
        row = summary_row(summary, scenario, test_set, group, inp, clf)
        if row is None:
            continue
        node = out.setdefault(scenario, {})
        if group:
            node = node.setdefault(group, {})
        node.setdefault(test_set, {}).setdefault(inp, {})[clf] = {
            key: float(row[f"{m}_{stat}"]) for m in measures for key, stat in ((m, "mean"), (f"{m}_std", "std"))}
