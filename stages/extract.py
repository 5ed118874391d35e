"""DVC stage `extract@<concept>-<k>`: softmax, gradient and detector metrics of shard k of a
concept's evaluation images (every image with K = 1), to ``data/features/<concept>/part-<k>.parquet``."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import click

from gradmeta.cnn import file_sha256, load_model, to_tensor
from gradmeta.core.console import reports_errors, setup_logging, stage_item
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.features import part_path
from gradmeta.prepared import load_prepared
from gradmeta.runtime import configure, resolve_device
from gradmeta.uncertainty.detectors.base import logits_layer
from gradmeta.uncertainty.detectors.fitted import detector_instances, load_detectors
from gradmeta.uncertainty.stage import ExtractSettings, run, write


def _stage_concept_and_shard(concept: str | None, shard: int | None) -> tuple[str, str, int]:
    """(stage name, concept, shard) from the options or, under DVC, from ``$DVC_STAGE`` (``extract@<concept>-<k>``)."""
    if concept is not None:
        return stage_item(concept, "--concept")[0] or "extract", concept, shard or 0
    stage, item = stage_item(None, "--concept")
    name, _, k = item.rpartition("-")
    if not name or not k.isdigit():
        raise GradmetaError(f"DVC_STAGE={stage}@{item} is not a stage extract@<concept>-<shard>")
    return stage, name, int(k)


@click.command()
@click.option("--concept", default=None,
              help="A concept of data.concepts or data.user_concepts (under DVC: the stage's, from $DVC_STAGE).")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--model", "model_path", default="models/cnn.pt", show_default=True)
@click.option("--data", "data_path", default=None, help="Prepared npz (default data/prepared/<concept>.npz).")
@click.option("--shard", default=None, type=int,
              help="Which of the extract.shards blocks of rows to compute (default 0; under DVC: the stage's).")
@click.option("--out", "out_path", default=None,
              help="Parquet file (default data/features/<concept>/part-<shard>.parquet).")
@click.option("--detectors", "detectors_path", default="models/detectors.npz", show_default=True,
              help="Fitted detector state (the detectors stage).")
@reports_errors
def main(concept: str | None, params_path: str, model_path: str, data_path: str | None, shard: int | None,
         out_path: str | None, detectors_path: str) -> None:
    stage, concept, shard = _stage_concept_and_shard(concept, shard)
    log = setup_logging(f"{stage}@{concept}-{shard}")
    cfg = ExtractSettings.from_params(load_params(params_path))
    cfg.check(concept, shard, params_path)
    data_path = data_path or f"data/prepared/{concept}.npz"
    out_path = out_path or str(part_path("data/features", concept, shard))
    device = resolve_device(cfg.extract.device, f"{params_path}: extract.device")
    configure(cfg.extract.threads)
    data = load_prepared(data_path)
    if data.concept != concept:
        raise GradmetaError(f"{data_path}: holds concept {data.concept!r}, expected {concept!r}")
    model = load_model(model_path, device)
    model_sha256 = file_sha256(model_path)
    head = logits_layer(model, to_tensor(data.images[:1]))  # found once: the fitted state and every detector fit it
    detectors = detector_instances(head, cfg.detectors, load_detectors(detectors_path, head, cfg.detectors,
                                                                       model_sha256))
    result = run(cfg, model, data, detectors, shard, device, model_sha256)
    frame = result.frame
    log.info("seconds per part: %s", ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    log.info("%d images (%s, %s; shard %d of %d), %d metric columns, %.0f images/s on %s", len(frame), data.kind,
             data.source, shard, cfg.extract.shards, frame.shape[1] - 5, len(frame) / max(result.total_seconds, 1e-9),
             device)
    write(result, out_path)


if __name__ == "__main__":
    main()
