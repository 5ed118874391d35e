"""DVC stage `evaluate`: score the meta-test rows; write metrics, plot data, figures and the report."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import joblib

from gradmeta.atomic import write_bytes, write_json
from gradmeta.claims import claim_a, claim_b, claim_c, claim_d
from gradmeta.cli import reports_errors, setup_logging
from gradmeta.datasets.concepts import KNOWN_CONCEPT
from gradmeta.errors import GradmetaError
from gradmeta.meta import THRESHOLD, FittedMeta
from gradmeta.params import ParamReader, load_params
from gradmeta.plots import write_auroc_bars, write_histograms, write_roc
from gradmeta.report import measures_csv, render_report, scenarios_json
from gradmeta.scenarios import load_concept_features
from gradmeta.scoring import cnn_context, score_all, summarize_results


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--features-dir", default="data/features", show_default=True)
@click.option("--meta", "meta_path", default="models/meta/meta.joblib", show_default=True)
@click.option("--metrics-dir", default="metrics", show_default=True)
@reports_errors
def main(params_path: str, features_dir: str, meta_path: str, metrics_dir: str) -> None:
    log = setup_logging("evaluate")
    params = load_params(params_path)
    r = ParamReader(params.get("evaluate"), "evaluate")
    if not Path(meta_path).is_file():
        raise GradmetaError(f"{meta_path}: meta classifiers not found (run the meta stage first)")
    try:
        fitted: FittedMeta = joblib.load(meta_path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise GradmetaError(f"{meta_path}: not a readable meta classifier file ({type(exc).__name__})") from None
    cfg = fitted.config
    unknowns = list(cfg.unknown_concepts)
    if not cfg.classifiers:
        raise GradmetaError("params.yaml: meta.classifiers is empty; the claims need at least one meta classifier")
    primary = r.str("primary_classifier", None, choices=cfg.classifiers, allow_none=True) or cfg.classifiers[0]
    remote = r.str_list("remote_concepts", [c for c in ("cifar10", "noise") if c in unknowns], choices=unknowns)
    hist_metrics = r.str_list("histogram_metrics", ["softmax/entropy", "grad/all/l2"])
    min_metrics = r.int("min_metrics", 2, min=1)
    margin = r.float("margin", 0.01, min=0.0)
    frames, sources = load_concept_features(features_dir, cfg.unknown_concepts)
    missing = [m for m in hist_metrics if m not in frames[KNOWN_CONCEPT].columns]
    if missing:
        raise GradmetaError(f"params.yaml: evaluate.histogram_metrics: no feature column {missing[0]!r}")
    source = "synthetic" if "synthetic" in sources.values() else "real"

    composite = [(name, clf) for name in fitted.inputs.sets for clf in cfg.classifiers]
    headline = [(m, THRESHOLD) for m in fitted.inputs.named_single] + composite
    curves = {slug: inp for slug, inp in (("entropy", ("softmax/entropy", THRESHOLD)),
                                          ("gradient", ("gradient", primary)), ("all", ("all", primary)))}
    results, roc = score_all(frames, fitted, tuple(curves.values()))
    summary = summarize_results(results)
    context = cnn_context(frames)

    metrics = Path(metrics_dir)
    plots_dir, figures_dir = metrics / "plots", metrics / "figures"
    for d in (plots_dir, figures_dir):  # outputs of this stage only: start clean, no stale files
        shutil.rmtree(d, ignore_errors=True)
    write_roc(roc, curves, KNOWN_CONCEPT, plots_dir, figures_dir)
    write_auroc_bars(summary, headline, KNOWN_CONCEPT, plots_dir, figures_dir)
    write_histograms(frames, hist_metrics, KNOWN_CONCEPT, figures_dir)

    verdict_d, note_d = claim_d(summary, remote, primary, margin)
    verdicts = [claim_a(summary, KNOWN_CONCEPT, min_metrics), claim_b(summary, unknowns, primary),
                claim_c(summary, unknowns, primary, 2 * margin), verdict_d]
    figures = sorted(p.name for p in figures_dir.glob("*.png"))
    report = render_report(source=source, summary=summary, context=context, main_rows=headline, known=KNOWN_CONCEPT,
                           unknowns=unknowns, verdicts=verdicts, notes=[note_d], repeats=cfg.repeats,
                           test_fraction=cfg.test_fraction, figures=figures)
    write_json(metrics / "scenarios.json", scenarios_json(summary, headline, context, KNOWN_CONCEPT))
    write_bytes(metrics / "measures.csv", measures_csv(summary).encode())
    write_bytes(metrics / "report.md", report.encode())
    for v in verdicts:
        log.info("claim (%s) %s", v.claim, v.word)
    log.info("%d result rows (%s source) -> %s", len(results), source, metrics / "report.md")


if __name__ == "__main__":
    main()
