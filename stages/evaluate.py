"""DVC stage `evaluate`: score the meta-test rows; write metrics, plot data, figures and the report."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import click

from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.params import load_params
from gradmeta.evaluation import run


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--features-dir", default="data/features", show_default=True)
@click.option("--meta", "meta_path", default="models/meta/meta.npz", show_default=True)
@click.option("--metrics-dir", default="metrics", show_default=True)
@reports_errors
def main(params_path: str, features_dir: str, meta_path: str, metrics_dir: str) -> None:
    run(load_params(params_path), features_dir, meta_path, metrics_dir, setup_logging("evaluate"))


if __name__ == "__main__":
    main()
