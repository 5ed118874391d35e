"""DVC stage `extract@<concept>`: softmax and gradient metrics of every evaluation image, to Parquet."""

from __future__ import annotations

import time

import click

from gradmeta.cnn import file_sha256, load_model, to_tensor
from gradmeta.core.concepts import concept_names
from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.core.runtime import configure, resolve_device
from gradmeta.features import write_features
from gradmeta.prepared import load_prepared
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import load_detectors
from gradmeta.uncertainty.extraction import ExtractConfig, extract_features


@click.command()
@click.option("--concept", required=True, help="A concept of data.concepts or data.user_concepts.")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--model", "model_path", default="models/cnn.pt", show_default=True)
@click.option("--data", "data_path", default=None, help="Prepared npz (default data/prepared/<concept>.npz).")
@click.option("--out", "out_path", default=None, help="Parquet file (default data/features/<concept>.parquet).")
@click.option("--detectors", "detectors_path", default="models/detectors.npz", show_default=True,
              help="Fitted detector state (the detectors stage).")
@reports_errors
def main(concept: str, params_path: str, model_path: str, data_path: str | None, out_path: str | None,
         detectors_path: str) -> None:
    log = setup_logging(f"extract@{concept}")
    params = load_params(params_path)
    concepts = concept_names(params)
    if concept not in concepts.all:
        raise GradmetaError(f"{params.source}: --concept {concept!r} is not among the concepts ({', '.join(concepts.all)})")
    data_path = data_path or f"data/prepared/{concept}.npz"
    out_path = out_path or f"data/features/{concept}.parquet"
    cfg = ExtractConfig.from_params(params)
    detectors = DetectorsConfig.from_params(params)
    device = resolve_device(cfg.device)
    configure(cfg.threads)
    data = load_prepared(data_path)
    if data.concept != concept:
        raise GradmetaError(f"{data_path}: holds concept {data.concept!r}, expected {concept!r}")
    model = load_model(model_path, device)
    fitted = load_detectors(detectors_path, model, to_tensor(data.images[:1]).to(device), detectors)
    start = time.perf_counter()
    parts: dict[str, float] = {}
    frame = extract_features(model, data, cfg, device, known=concept == concepts.known, detectors=detectors,
                             fitted=fitted, seconds=parts)
    seconds = time.perf_counter() - start
    log.info("seconds per part: %s", ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    log.info("%d images (%s, %s), %d metric columns, %.0f images/s on %s", len(frame), data.kind, data.source,
             frame.shape[1] - 5, len(frame) / max(seconds, 1e-9), device)
    write_features(out_path, frame, {"concept": concept, "known": concept == concepts.known, "source": data.source,
                                     "kind": data.kind, "provenance": data.provenance,
                                     "model_sha256": file_sha256(model_path), "extract": cfg.to_dict(),
                                     "detectors": detectors.to_dict()})


if __name__ == "__main__":
    main()
