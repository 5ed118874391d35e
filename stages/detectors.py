"""DVC stage `detectors`: fit the field's feature detectors (Mahalanobis, KNN, ViM, ReAct) on the known
concept's train split and save their state for the extract stage."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import time

import click

from gradmeta.cnn import file_sha256, load_model
from gradmeta.core.concepts import concept_names
from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.params import load_params
from gradmeta.prepared import load_prepared
from gradmeta.runtime import configure, resolve_device
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors_stage import DetectorsStageConfig, run, write


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--model", "model_path", default="models/cnn.pt", show_default=True)
@click.option("--data", "data_path", default=None, help="Prepared npz of the known concept (default from data.known).")
@click.option("--out", "out_path", default="models/detectors.npz", show_default=True)
@reports_errors
def main(params_path: str, model_path: str, data_path: str | None, out_path: str) -> None:
    log = setup_logging("detectors")
    params = load_params(params_path)
    data_path = data_path or f"data/prepared/{concept_names(params).known}.npz"
    cfg = DetectorsConfig.from_params(params)
    how = DetectorsStageConfig.from_params(params)
    configure(how.threads)  # nothing random: KNN's bank is drawn from its own seed, detectors.knn.seed
    device = resolve_device(how.device, f"{how.params_file}: detectors_stage.device")
    train = load_prepared(data_path).select("train")
    model = load_model(model_path, device)
    start = time.perf_counter()
    fitted = run(cfg, model, train, file_sha256(model_path), log)
    log.info("fitted %s on %d train images of %s in %.1f s", ", ".join(fitted.detectors) or "nothing", len(train),
             train.concept, time.perf_counter() - start)
    write(fitted, out_path)


if __name__ == "__main__":
    main()
