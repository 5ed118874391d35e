"""DVC stage `evaluate`: score the meta-test rows; write metrics, plot data, figures and the report."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import click

from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.params import load_params
from gradmeta.evaluation import EvaluateConfig, run, write
from gradmeta.meta.persistence import load_fitted
from gradmeta.meta.scenarios import load_concept_features


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--features-dir", default="data/features", show_default=True)
@click.option("--meta", "meta_path", default="models/meta/meta.npz", show_default=True)
@click.option("--metrics-dir", default="metrics", show_default=True)
@reports_errors
def main(params_path: str, features_dir: str, meta_path: str, metrics_dir: str) -> None:
    log = setup_logging("evaluate")
    fitted = load_fitted(meta_path)
    cfg = EvaluateConfig.from_params(load_params(params_path), fitted.config)  # resolved against the fitted config
    known, unknowns = fitted.config.known_concept, fitted.config.unknown_concepts
    frames, metas = load_concept_features(features_dir, (known, *unknowns), log)
    evaluation = run(cfg, fitted, frames, metas, meta_path)
    write(evaluation, metrics_dir)
    for v in evaluation.verdicts:
        log.info("claim (%s) %s", v.claim, v.word)
    kinds = ", ".join(sorted({str(m.get("kind", "?")) for m in metas.values()}))
    log.info("%d result rows (%s) -> %s/report.md", evaluation.n_results, kinds, metrics_dir)


if __name__ == "__main__":
    main()
