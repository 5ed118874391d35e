"""What the fair field's detectors and gradient factors cost the extract stage, per image.

One process, pinned as the stages run it (``prepare_process``), on the default CNN (params.yaml's
architecture, random weights: the cost depends on the shapes, not the values) and random images:

- ``before``: the extract stage's work as it was before the fair field: the gradient engine (paper
  statistics, both extra targets) and the detectors mahalanobis, knn, vim, react, odin, mc_dropout;
- ``after``: the same plus mahalanobis_pp, rmd, feature_norm, grad_knn, grad_pca, exgrad and the
  ``factor/...`` columns, as the default params.yaml now runs it.

Detectors are fitted once on ``--train-n`` images (KNN and gradient KNN banks of 5,000, as the
default), not timed. Rounds alternate before / after; printed: seconds per 1,000 images of each
side (best round), the median over rounds of the per-round ratio after / before, and the median
seconds of each part (the gradient engine's pass; each detector, the first to read the penultimate
features including their pass).

    python benchmarks/extract_detectors.py [--n 1000] [--train-n 6000] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import click

OLD = ["mahalanobis", "knn", "vim", "react", "odin", "mc_dropout"]
NEW = ["mahalanobis", "mahalanobis_pp", "rmd", "feature_norm", "knn", "grad_knn", "grad_pca", "exgrad", "vim", "react",
       "odin", "mc_dropout"]


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@click.command()
@click.option("--n", default=1000, show_default=True, help="images scored per round and side")
@click.option("--train-n", default=6000, show_default=True, help="images the detectors are fitted on")
@click.option("--rounds", default=3, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--json", "json_path", default=None, help="write the figures here")
def main(n: int, train_n: int, rounds: int, threads: int, json_path: str | None) -> None:
    from gradmeta.core.process import prepare_process

    prepare_process()
    import torch

    from gradmeta.cnn import CNNConfig, build_cnn
    from gradmeta.runtime import configure
    from gradmeta.uncertainty.detectors.base import logits_layer
    from gradmeta.uncertainty.detectors.config import DetectorsConfig
    from gradmeta.uncertainty.detectors.fitted import detector_instances, fit_detectors
    from gradmeta.uncertainty.table import metric_table

    configure(threads, 0)
    model = build_cnn(CNNConfig(), seed=0).eval()
    gen = torch.Generator().manual_seed(0)
    train = torch.rand(train_n, 1, 28, 28, generator=gen)
    labels = torch.randint(0, 10, (train_n,), generator=gen)
    images = torch.rand(n, 1, 28, 28, generator=gen)
    sides = {}
    for name, use, factors in (("before", OLD, False), ("after", NEW, True)):
        cfg = DetectorsConfig.from_params({"detectors": {"use": use}})
        fitted = fit_detectors(model, train, labels, cfg, "0" * 64).detectors
        sides[name] = (cfg, detector_instances(logits_layer(model, images[:1]), cfg, fitted), factors)
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    parts: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for _ in range(rounds):
        for name, (cfg, detectors, factors) in sides.items():
            one: dict[str, float] = {}
            start = time.perf_counter()
            metric_table(model, images, targets=list(cfg.targets), detectors=detectors, chunk_size=64,
                         detector_chunk_size=cfg.chunk_size, factors=factors, seconds=one)
            seconds[name].append(time.perf_counter() - start)
            for part, value in one.items():
                parts[name].setdefault(part, []).append(value)
    ratios = [a / b for a, b in zip(seconds["after"], seconds["before"], strict=True)]
    out = {"cpu": _cpu(), "threads": threads, "n": n, "rounds": rounds,
           "seconds_per_1000": {k: round(1000 * min(v) / n, 3) for k, v in seconds.items()},
           "ratio_after_before_median": round(statistics.median(ratios), 4),
           "ratios": [round(r, 4) for r in ratios],
           "parts_median_seconds": {k: {p: round(statistics.median(s), 3) for p, s in v.items()}
                                    for k, v in parts.items()}}
    text = json.dumps(out, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")


if __name__ == "__main__":
    main()
