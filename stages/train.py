"""DVC stage `train`: fit the CNN on the known concept's train split; write the model and its metrics."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import click

from gradmeta.cnn import TrainConfig
from gradmeta.cnn.stage import TrainPaths, run, write
from gradmeta.core.concepts import concept_names
from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.params import load_params
from gradmeta.prepared import load_prepared


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--data", "data_path", default=None, help="Prepared npz (default data/prepared/<data.known>.npz).")
@click.option("--model-out", default="models/cnn.pt", show_default=True)
@click.option("--metrics-out", default="metrics/train.json", show_default=True)
@click.option("--curve-out", default="metrics/train_curve.json", show_default=True)
@reports_errors
def main(params_path: str, data_path: str | None, model_out: str, metrics_out: str, curve_out: str) -> None:
    log = setup_logging("train")
    params = load_params(params_path)
    data_path = data_path or f"data/prepared/{concept_names(params).known}.npz"
    cfg = TrainConfig.from_params(params)
    trained = run(cfg, load_prepared(data_path), log, where=data_path)
    write(trained, cfg, TrainPaths(model_out, metrics_out, curve_out))


if __name__ == "__main__":
    main()
