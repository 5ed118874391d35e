"""DVC stage `download`: prepare every concept (real archives or synthetic stand-ins) as npz + a montage."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image

from gradmeta.core.atomic import atomic_path
from gradmeta.core.concepts import CONCEPTS
from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.params import load_params
from gradmeta.core.runtime import configure
from gradmeta.datasets import DataConfig, prepare_concept
from gradmeta.datasets.imageops import montage
from gradmeta.prepared import save_prepared


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--out-dir", default="data/prepared", show_default=True)
@click.option("--samples-dir", default="metrics/samples", show_default=True)
@reports_errors
def main(params_path: str, out_dir: str, samples_dir: str) -> None:
    log = setup_logging("download")
    cfg = DataConfig.from_params(load_params(params_path))
    configure(threads=2)
    prepared = {}
    for concept in CONCEPTS:
        data = prepare_concept(concept, cfg)
        splits = ", ".join(f"{s}: {int((data.split == s).sum())}" for s in dict.fromkeys(data.split.tolist()))
        log.info("%s: %d images (%s) from the %s source %s", concept, len(data), splits, data.source,
                 "(SYNTHETIC stand-in)" if data.source == "synthetic" else "(original archives)")
        prepared[concept] = data
    # Every concept is ready: only now write, so a failure leaves no partial set of outputs.
    for concept, data in prepared.items():
        save_prepared(Path(out_dir) / f"{concept}.npz", data)
        sample = data.images[np.linspace(0, len(data) - 1, min(len(data), 128)).astype(int)]
        with atomic_path(Path(samples_dir) / f"{concept}.png") as tmp:
            Image.fromarray(montage(sample, columns=16)).save(tmp, format="PNG")
    log.info("wrote %d concepts to %s", len(prepared), out_dir)


if __name__ == "__main__":
    main()
