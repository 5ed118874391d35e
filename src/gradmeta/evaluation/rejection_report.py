"""What the report, the headline metrics and the plots show of the ``rejection`` scenario
(:mod:`.rejection`): the tables (methods x measures pooled; AURC per unknown concept), the judged line
(does the primary meta classifier beat SIRC, REL-U and DOCTOR on AURC and AUGRC, paired per split; which
feature set wins), the headline numbers and the risk-coverage curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gradmeta.core.atomic import round_floats, write_json
from gradmeta.evaluation.plots import save_figure
from gradmeta.evaluation.rejection import KNOWN_ONLY
from gradmeta.evaluation.risk import risk_coverage
from gradmeta.evaluation.summary import select
from gradmeta.meta.classifiers import PROBABILITIES, REL_U, THRESHOLD

BASELINES = {  # name -> its (input, classifier) candidates; the best candidate stands for the name
    "MSP": [("softmax/max_prob", THRESHOLD)], "entropy": [("softmax/entropy", THRESHOLD)],
    "DOCTOR": [("detector/doctor_alpha", THRESHOLD), ("detector/doctor_beta", THRESHOLD)],
    "REL-U": [(PROBABILITIES, REL_U)], "SIRC": [("detector/sirc", THRESHOLD)],
}
JUDGED = ("SIRC", "REL-U", "DOCTOR")
CURVES = {"msp": ("softmax/max_prob", THRESHOLD), "doctor_alpha": ("detector/doctor_alpha", THRESHOLD),
          "relu": (PROBABILITIES, REL_U), "sirc": ("detector/sirc", THRESHOLD)}
LABELS = {"auroc": "AUROC", "aurc": "AURC", "augrc": "AUGRC", "risk_at_80": "risk@80%", "risk_at_90": "risk@90%",
          "risk_at_95": "risk@95%"}


def known_unknowns_groups(summary: pd.DataFrame) -> tuple[str, str]:
    """The setting names of the known-unknowns fits: (per concept, pooled), e.g. ("unseen", "seen")."""
    pooled = set(summary[(summary.test_set == "pooled") & (summary.group != KNOWN_ONLY)].group)
    return ("unseen", "seen") if "seen" in pooled else ("unseen", "listed")


def _row(summary: pd.DataFrame, test_set: str, group: str, inp: str, clf: str) -> pd.Series | None:
    hit = select(summary, test_set=test_set, group=group, input=inp, classifier=clf)
    return None if hit.empty else hit.iloc[0]


def _cell(row: pd.Series | None, measure: str) -> str:
    if row is None:
        return "–"
    digits = 3 if measure == "auroc" else 4
    return f"{row[f'{measure}_mean']:.{digits}f} ± {row[f'{measure}_std']:.{digits}f}"


def best_baseline(summary: pd.DataFrame, name: str) -> tuple[str, str] | None:
    """The candidate of baseline ``name`` with the lowest pooled AURC (known concept only), if any was scored."""
    rows = [(r.aurc_mean, key) for key in BASELINES[name]
            if (r := _row(summary, "pooled", KNOWN_ONLY, *key)) is not None]
    return min(rows)[1] if rows else None


def best_set(summary: pd.DataFrame, sets: list[str], classifier: str, group: str) -> str | None:
    """The feature set with the lowest pooled AURC for ``classifier`` in setting ``group``."""
    rows = [(r.aurc_mean, s) for s in sets if (r := _row(summary, "pooled", group, s, classifier)) is not None]
    return min(rows)[1] if rows else None


def method_rows(summary: pd.DataFrame, sets: list[str], classifier: str) -> list[tuple[str, str, str, str]]:
    """(label, input, classifier, setting): the named baselines, every other detector, then each feature
    set with ``classifier`` in both settings."""
    rows, seen = [], set()
    for name, keys in BASELINES.items():
        for inp, clf in keys:
            if _row(summary, "pooled", KNOWN_ONLY, inp, clf) is not None:
                rows.append((name, inp, clf, KNOWN_ONLY))
                seen.add(inp)
    others = summary[(summary.test_set == "pooled") & (summary.group == KNOWN_ONLY) & (summary.classifier == THRESHOLD)
                     & summary.input.str.startswith("detector/")]
    rows += [("detector", inp, THRESHOLD, KNOWN_ONLY) for inp in others.input if inp not in seen]
    pooled_ku = known_unknowns_groups(summary)[1]
    rows += [("meta", s, classifier, group) for group in (KNOWN_ONLY, pooled_ku) for s in sets]
    return rows


def _paired(results: pd.DataFrame, measure: str, a: tuple[str, str, str], b: tuple[str, str, str]) -> tuple[float, float]:
    """Mean and std over repeats of measure(a) - measure(b) on pooled rows, a/b = (input, classifier, setting)."""
    def series(key: tuple[str, str, str]) -> pd.Series:
        hit = results[(results.test_set == "pooled") & (results.input == key[0]) & (results.classifier == key[1])
                      & (results.group == key[2])]
        return hit.set_index("repeat")[measure]
    diff = (series(a) - series(b)).dropna()
    return float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0


def _word(gain: float, spread: float) -> str:
    return "beats" if gain > 0 and gain > spread else "loses to" if gain < 0 and -gain > spread else "ties with"


def judged_lines(summary: pd.DataFrame, results: pd.DataFrame, sets: list[str], classifier: str) -> list[str]:
    """Per setting: which feature set wins, and whether it beats each judged baseline on AURC and AUGRC
    (paired per split: baseline minus meta, beats where the mean exceeds its std)."""
    lines = []
    for group in (KNOWN_ONLY, known_unknowns_groups(summary)[1]):
        winner = best_set(summary, sets, classifier, group)
        if winner is None:
            continue
        row = _row(summary, "pooled", group, winner, classifier)
        parts = []
        for name in JUDGED:
            base = best_baseline(summary, name)
            if base is None:
                continue
            verdicts = []
            for m in ("aurc", "augrc"):
                gain, spread = _paired(results, m, (*base, KNOWN_ONLY), (winner, classifier, group))
                verdicts.append(f"{LABELS[m]} {gain:+.4f} ± {spread:.4f}: {_word(gain, spread)}")
            parts.append(f"{name} (`{base[0]}`; " + ", ".join(verdicts) + ")")
        setting = "known concept only" if group == KNOWN_ONLY else f"known unknowns ({group})"
        lines.append(f"- **{setting}:** `{winner}` wins among the feature sets ({classifier}: AURC {_cell(row, 'aurc')}, "
                     f"AUGRC {_cell(row, 'augrc')}); against " + "; ".join(parts) + ".")
    singles = summary[(summary.test_set == "pooled") & (summary.group == KNOWN_ONLY) & (summary.classifier != classifier)]
    if not singles.empty:
        best = singles.loc[singles.aurc_mean.idxmin()]
        lines.append(f"- The best single score (no meta classifier) is `{best.input}` ({best.classifier}): AURC "
                     f"{_cell(best, 'aurc')}, AUGRC {_cell(best, 'augrc')}.")
    return lines


def rejection_section(summary: pd.DataFrame, results: pd.DataFrame, sets: list[str], classifier: str,
                      unknowns: list[str], ratio: float) -> list[str]:
    """The report's "Rejection" section (nothing if the scenario was not scored)."""
    if summary.empty:
        return []
    rows = method_rows(summary, sets, classifier)
    head = ["method", "input", "setting", *LABELS.values()]
    pooled = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, inp, clf, group in rows:
        r = _row(summary, "pooled", group, inp, clf)
        pooled.append(f"| {label} | `{inp}` ({clf}) | {group} | " + " | ".join(_cell(r, m) for m in LABELS) + " |")
    per_ku = known_unknowns_groups(summary)
    head = ["method", "input", "setting", *(f"{c} AURC" for c in unknowns), "pooled AURC"]
    concepts = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, inp, clf, group in rows:
        cells = [_cell(_row(summary, c, per_ku[0] if group != KNOWN_ONLY else group, inp, clf), "aurc") for c in unknowns]
        concepts.append(f"| {label} | `{inp}` ({clf}) | {group} | " + " | ".join(cells)
                        + f" | {_cell(_row(summary, 'pooled', group, inp, clf), 'aurc')} |")
    text = [
        "## Rejection: both failures at once", "",
        ("Accept = a known-concept image classified correctly; reject = one classified wrongly or any image of an "
         f"unknown concept. Test mixture per split: every known meta-test row and {ratio:g} times as many unknown "
         "meta-test rows (at most what a concept has), seeded. `known_only`: fitted on the known concept's meta-train "
         f"rows alone; `{per_ku[1]}` / `{per_ku[0]}`: meta classifiers fitted with unknown concepts' meta-train rows "
         "(pooled: every unknown concept seen; per concept: the fit without it). AURC and AUGRC: lower is better; "
         "risk@p: selective risk at the first threshold covering p % of the rows. SIRC's second score is the "
         "feature norm. Mean ± std over the splits; every cell in `metrics/rejection.csv`, the risk-coverage "
         "curves of the first split in `figures/risk_coverage.png`."), "",
        *judged_lines(summary, results, sets, classifier), "",
        "Pooled:", "", *pooled, "", "AURC per unknown concept:", "", *concepts, "",
    ]
    return text


def rejection_headline(summary: pd.DataFrame, sets: list[str], classifier: str) -> dict:
    """``{"pooled": {<set>: {<classifier>: {aurc, augrc}}, "best_baseline": {aurc, augrc}}}``: the primary
    classifier on the feature set with the most columns (first listed on a tie), known concept only, and
    the baseline (MSP, entropy, DOCTOR, REL-U, SIRC) with the lowest pooled AURC."""
    out: dict = {}
    if summary.empty:
        return {}
    row = _row(summary, "pooled", KNOWN_ONLY, sets[0], classifier) if sets else None
    if row is not None:
        out[sets[0]] = {classifier: {m: float(row[f"{m}_mean"]) for m in ("aurc", "augrc")}}
    bases = [(r.aurc_mean, r) for name in BASELINES if (key := best_baseline(summary, name))
             and (r := _row(summary, "pooled", KNOWN_ONLY, *key)) is not None]
    if bases:
        best = min(bases, key=lambda b: b[0])[1]
        out["best_baseline"] = {m: float(best[f"{m}_mean"]) for m in ("aurc", "augrc")}
    return round_floats({"pooled": out}) if out else {}


def curve_points(scores: np.ndarray, target: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """Selective risk against coverage, thinned to at most ``max_points`` points (both ends kept)."""
    coverage, risk, _ = risk_coverage(scores, target)
    keep = np.unique(np.linspace(0, len(coverage) - 1, min(len(coverage), max_points)).astype(int))
    return [{"coverage": float(coverage[i]), "risk": float(risk[i])} for i in keep]


def write_curves(kept: dict, meta_set: str | None, classifier: str, group: str, plots_dir: Path,
                 figures_dir: Path) -> str | None:
    """Risk-coverage curves of repeat 0, pooled: one JSON per method (``risk_coverage_<slug>.json``: MSP,
    DOCTOR alpha, REL-U, SIRC, the meta classifier known-only and with known unknowns) and one PNG; the
    PNG's path relative to the report, or None if nothing was drawn."""
    curves = {slug: (KNOWN_ONLY, *key) for slug, key in CURVES.items()}
    if meta_set:
        curves |= {"meta_known_only": (KNOWN_ONLY, meta_set, classifier),
                   "meta_known_unknowns": (group, meta_set, classifier)}
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    drawn = False
    for slug, (setting, inp, clf) in curves.items():
        key = ("rejection", "pooled", setting, inp, clf)
        if key not in kept:
            continue
        points = curve_points(*kept[key])
        write_json(plots_dir / f"risk_coverage_{slug}.json", round_floats(points))
        ax.plot([p["coverage"] for p in points], [p["risk"] for p in points], label=f"{inp} ({clf}, {setting})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xlabel="coverage (share of rows accepted)", ylabel="selective risk (wrong or unknown among accepted)",
           title="Rejection, pooled: risk-coverage")
    ax.legend(fontsize=6, loc="upper left")
    save_figure(fig, figures_dir / "risk_coverage.png")
    return f"{figures_dir.name}/risk_coverage.png"

