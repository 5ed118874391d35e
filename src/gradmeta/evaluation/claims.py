"""The paper's four claims, judged from the summary table of results (never hard-coded).

``summary`` is :func:`gradmeta.evaluation.summary.summarize_results`'s table: one row per scenario, test set,
group, input and classifier with ``<measure>_mean`` and ``<measure>_std`` over repeated splits.

- (a) several gradient metrics alone reach entropy on the known concept: at least ``min_metrics``
  single gradient metrics whose mean accuracy and mean AUROC are each no lower than entropy's mean
  minus one entropy std;
- (b) entropy+gradient beats entropy alone on unknown concepts: with the primary classifier, its
  mean AUROC exceeds entropy's on the pooled test set and on a majority of the unknown concepts;
- (c) digits-only meta classifiers are uneven across unknown concepts: the spread (max - min) of
  the digits-only entropy+gradient model's mean AUROC over the unknown concepts exceeds both
  ``margin`` and twice the largest std;
- (d) known unknowns improve concepts remote from digits considerably: on every remote concept, the
  known-unknowns model's mean AUROC (``seen``: it saw meta-train rows of that concept) exceeds the
  digits-only one by more than ``margin`` and by more than the sum of both stds. The same test on
  ``unseen`` (leave-one-out) is reported alongside, as a note.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gradmeta.evaluation.summary import select, summary_row
from gradmeta.meta.classifiers import THRESHOLD

ENTROPY = "softmax/entropy"
COMBINED = "entropy+gradient"


@dataclass(frozen=True)
class Verdict:
    claim: str
    statement: str
    holds: bool | None  # None: the inputs needed to judge are not configured
    evidence: str
    cells: tuple[tuple[str, float], ...] = ()  # (cell, AUROC std over the repeats) of every cell the verdict rests on

    def unstable(self, threshold: float) -> list[str]:
        """The cells this verdict rests on whose AUROC std exceeds ``threshold``, as 'cell (std)'."""
        return [f"{cell} ({std:.3f})" for cell, std in self.cells if std > threshold]

    @property
    def word(self) -> str:
        return "n/a" if self.holds is None else ("holds" if self.holds else "does not hold")


def _fmt(row: pd.Series, measure: str = "auroc") -> str:
    return f"{row[f'{measure}_mean']:.4f} ± {row[f'{measure}_std']:.4f}"


def claim_a(summary: pd.DataFrame, known: str, min_metrics: int = 2) -> Verdict:
    statement = ("Several gradient metrics alone reach entropy's meta-classification accuracy and AUROC on the "
                 "known concept (within one std).")
    ent = summary_row(summary, "misclassification", known, "", ENTROPY, THRESHOLD)
    singles = select(summary, scenario="misclassification", classifier=THRESHOLD)
    grads = singles[singles.input.str.startswith("grad/")]
    if ent is None or grads.empty:
        return Verdict("a", statement, None, "entropy or single gradient metrics are not configured")
    ok = grads[(grads.auroc_mean >= ent.auroc_mean - ent.auroc_std)
               & (grads.accuracy_mean >= ent.accuracy_mean - ent.accuracy_std)].sort_values("auroc_mean", ascending=False)
    names = ", ".join(f"`{r.input}` ({r.auroc_mean:.4f})" for r in ok.head(5).itertuples())
    evidence = (f"entropy: accuracy {_fmt(ent, 'accuracy')}, AUROC {_fmt(ent)}; {len(ok)} of {len(grads)} "
                f"gradient metrics reach both" + (f", best: {names}" if len(ok) else ""))
    cells = ((f"misclassification {ENTROPY}", float(ent.auroc_std)),
             *((f"misclassification {r.input}", float(r.auroc_std)) for r in ok.itertuples()))
    return Verdict("a", statement, bool(len(ok) >= min_metrics), evidence, cells)


def claim_b(summary: pd.DataFrame, unknowns: list[str], classifier: str) -> Verdict:
    statement = f"Entropy + gradient metrics ({classifier}) beat entropy alone on unknown concepts (AUROC)."
    parts, wins, cells = [], 0, []
    pooled_win = None
    for test_set in [*unknowns, "pooled"]:
        ent = summary_row(summary, "unknown", test_set, "", ENTROPY, THRESHOLD)
        comb = summary_row(summary, "unknown", test_set, "", COMBINED, classifier)
        if ent is None or comb is None:
            return Verdict("b", statement, None, f"entropy or {COMBINED}/{classifier} is not configured")
        cells += [(f"{test_set} {ENTROPY}", float(ent.auroc_std)), (f"{test_set} {COMBINED}", float(comb.auroc_std))]
        win = comb.auroc_mean > ent.auroc_mean
        if test_set == "pooled":
            pooled_win = win
        else:
            wins += int(win)
        parts.append(f"{test_set}: {_fmt(comb)} vs {_fmt(ent)}")
    holds = bool(pooled_win and wins * 2 > len(unknowns))
    return Verdict("b", statement, holds, f"{COMBINED} vs entropy — " + "; ".join(parts)
                   + f" (better on {wins} of {len(unknowns)} concepts)", tuple(cells))


def claim_c(summary: pd.DataFrame, unknowns: list[str], classifier: str, margin: float = 0.02, *,
            known: str = "digits") -> Verdict:
    statement = (f"{known[:1].upper()}{known[1:]}-only meta classifiers ({COMBINED}, {classifier}) are uneven "
                 "across unknown concepts.")
    rows = [summary_row(summary, "unknown", c, "", COMBINED, classifier) for c in unknowns]
    if any(r is None for r in rows) or len(rows) < 2:
        return Verdict("c", statement, None, f"needs {COMBINED}/{classifier} and at least two unknown concepts")
    means = {c: r.auroc_mean for c, r in zip(unknowns, rows)}
    spread = max(means.values()) - min(means.values())
    largest_std = max(r.auroc_std for r in rows)
    holds = bool(spread > margin and spread > 2 * largest_std)
    listing = ", ".join(f"{c} {m:.4f}" for c, m in sorted(means.items(), key=lambda kv: kv[1]))
    return Verdict("c", statement, holds, f"AUROC {listing}: spread {spread:.4f}, largest std {largest_std:.4f}",
                   tuple((f"{c} {COMBINED}", float(r.auroc_std)) for c, r in zip(unknowns, rows)))


def _improvement(summary: pd.DataFrame, remote: list[str], classifier: str, group: str, margin: float):
    parts, all_ok, cells = [], True, []
    for c in remote:
        base = summary_row(summary, "unknown", c, "", COMBINED, classifier)
        ku = summary_row(summary, "known_unknowns", c, group, COMBINED, classifier)
        if base is None or ku is None:
            return None, f"{COMBINED}/{classifier} on {c} ({group}) is not available", ()
        cells += [(f"{c} {COMBINED}", float(base.auroc_std)), (f"{c} known unknowns ({group})", float(ku.auroc_std))]
        gain = ku.auroc_mean - base.auroc_mean
        ok = bool(gain > margin and gain > base.auroc_std + ku.auroc_std)
        all_ok = all_ok and ok
        parts.append(f"{c}: {_fmt(base)} → {_fmt(ku)} ({gain:+.4f})")
    return all_ok, "; ".join(parts), tuple(cells)


def claim_d(summary: pd.DataFrame, remote: list[str], classifier: str, margin: float = 0.01, *,
            known: str = "digits") -> tuple[Verdict, str]:
    statement = (f"Known unknowns improve concepts remote from {known} ({', '.join(remote)}) considerably "
                 f"({COMBINED}, {classifier}).")
    if not remote:
        return Verdict("d", statement, None, "no remote concepts configured"), ""
    holds, evidence, cells = _improvement(summary, remote, classifier, "seen", margin)
    unseen_holds, unseen_evidence, _ = _improvement(summary, remote, classifier, "unseen", margin)
    note = ""
    if unseen_holds is not None:
        note = (f"On remote concepts *not* seen in training (leave-one-out) the improvement "
                f"{'also holds' if unseen_holds else 'does not hold'}: {unseen_evidence}.")
    return Verdict("d", statement, holds, "seen in training: " + evidence, cells), note
