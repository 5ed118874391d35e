"""Plot data for ``dvc plots`` (small JSON files) and PNG figures for the report."""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from gradmeta.core.atomic import round_floats, write_bytes, write_json
from gradmeta.evaluation.summary import summary_row

ROC_SCENARIOS = (("misclassification", None, ""), ("unknown", "pooled", ""), ("known_unknowns", "pooled", "seen"))


def save_figure(fig: plt.Figure, path: str | os.PathLike[str]) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def roc_points(scores: np.ndarray, target: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """ROC curve (correct = positive) thinned to at most ``max_points`` points, as fpr/tpr records."""
    fpr, tpr, _ = roc_curve(target, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), max_points)).astype(int))
    return [{"fpr": float(fpr[i]), "tpr": float(tpr[i])} for i in keep]


def write_roc(roc: dict, curves: dict[str, tuple[str, str]], known: str, plots_dir: Path, figures_dir: Path) -> None:
    """Per scenario: one JSON per curve (``roc_<scenario>_<slug>.json``) and one PNG with all curves."""
    for scenario, test_set, group in ROC_SCENARIOS:
        test_set = test_set or known
        fig, ax = plt.subplots(figsize=(4.5, 4.2))
        drawn = False
        for slug, (inp, clf) in curves.items():
            key = (scenario, test_set, group, inp, clf)
            if key not in roc:
                continue
            points = roc_points(*roc[key])
            write_json(plots_dir / f"roc_{scenario}_{slug}.json", round_floats(points))
            ax.plot([p["fpr"] for p in points], [p["tpr"] for p in points], label=f"{inp} ({clf})")
            drawn = True
        if drawn:
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
            ax.set(xlabel="false positive rate (wrong accepted)", ylabel="true positive rate (correct accepted)",
                   title=f"ROC: {scenario} / {test_set}" + (f" ({group})" if group else ""))
            ax.legend(fontsize=7, loc="lower right")
            save_figure(fig, figures_dir / f"roc_{scenario}.png")
        else:
            plt.close(fig)


def write_auroc_bars(summary: pd.DataFrame, inputs: list[tuple[str, str]], known: str, plots_dir: Path,
                     figures_dir: Path, chart: str = "auroc") -> None:
    """AUROC (mean ± std) per input for misclassification and unknown/pooled: JSON for dvc
    (``<chart>_<scenario>.json``), PNG for people (``<chart>_<scenario>.png``, an axis from 0 to 1)."""
    for scenario, test_set in (("misclassification", known), ("unknown", "pooled")):
        rows = []
        for inp, clf in inputs:
            row = summary_row(summary, scenario, test_set, "", inp, clf)
            if row is not None:
                rows.append({"input": f"{inp} ({clf})", "auroc": float(row.auroc_mean), "std": float(row.auroc_std)})
        if not rows:
            continue
        write_json(plots_dir / f"{chart}_{scenario}.json", round_floats(rows))
        fig, ax = plt.subplots(figsize=(6, 0.32 * len(rows) + 1))
        ax.barh([r["input"] for r in rows], [r["auroc"] for r in rows], xerr=[r["std"] for r in rows], color="#4878a8")
        ax.set(xlim=(0.0, 1.0), xlabel="AUROC (mean ± std over splits)", title=f"{scenario} / {test_set}")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        save_figure(fig, figures_dir / f"{chart}_{scenario}.png")


def write_histograms(frames: dict[str, pd.DataFrame], columns: list[str], known: str, figures_dir: Path) -> None:
    """Histograms of a metric: known concept (correct, wrong) vs each unknown concept; log axis for gradients."""
    for column in columns:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        log = column.startswith("grad/")
        groups = {f"{known} correct": frames[known][frames[known].correct][column],
                  f"{known} wrong": frames[known][~frames[known].correct][column]}
        groups.update({c: f[column] for c, f in frames.items() if c != known})
        values = np.concatenate([g.to_numpy(dtype=np.float64) for g in groups.values()])
        if log:
            positive = values[values > 0]
            lo, hi = (positive.min(), positive.max()) if len(positive) else (1e-12, 1.0)
            bins = np.logspace(np.log10(lo), np.log10(hi) + 1e-9, 40)
        else:
            bins = np.linspace(values.min(), values.max() + 1e-12, 40)
        for name, g in groups.items():
            v = g.to_numpy(dtype=np.float64)
            v = v[v > 0] if log else v
            if len(v):  # share of the group's rows per bin, so groups of any size compare
                ax.hist(v, bins=bins, histtype="step", weights=np.full(len(v), 1.0 / len(v)), label=name)
        if log:
            ax.set_xscale("log")
        ax.set(xlabel=column, ylabel="share of rows", title=f"{column}: known vs unknown concepts")
        ax.legend(fontsize=7)
        save_figure(fig, figures_dir / f"hist_{column.replace('/', '_')}.png")
