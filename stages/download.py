"""DVC stage `download@<concept>` (and `import@<concept>` for your own files): prepare one concept
as npz + a montage of what the CNN will see."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

from pathlib import Path

import click

from gradmeta.core.concepts import KIND_WORDS
from gradmeta.core.console import reports_errors, setup_logging, stage_item
from gradmeta.core.params import load_params
from gradmeta.core.runtime import configure
from gradmeta.datasets import DataConfig, prepare_concept
from gradmeta.datasets.imageops import save_montage
from gradmeta.prepared import save_prepared


@click.command()
@click.option("--concept", default=None,
              help="A concept of data.concepts or data.user_concepts (under DVC: the stage's, from $DVC_STAGE).")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--out-dir", default="data/prepared", show_default=True)
@click.option("--samples-dir", default="metrics/samples", show_default=True)
@reports_errors
def main(concept: str | None, params_path: str, out_dir: str, samples_dir: str) -> None:
    stage, concept = stage_item(concept, "--concept")
    log = setup_logging(f"{stage or 'download'}@{concept}")
    cfg = DataConfig.from_params(load_params(params_path))
    configure(threads=cfg.threads)
    data = prepare_concept(concept, cfg)
    splits = ", ".join(f"{s}: {int((data.split == s).sum())}" for s in dict.fromkeys(data.split.tolist()))
    log.info("%s: %d images (%s), %s: %s", concept, len(data), splits, KIND_WORDS[data.kind],
             data.provenance["description"])
    save_prepared(Path(out_dir) / f"{concept}.npz", data)
    save_montage(Path(samples_dir) / f"{concept}.png", data.images)


if __name__ == "__main__":
    main()
