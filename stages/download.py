"""DVC stage `download@<concept>` (and `import@<concept>` for your own files): prepare one concept
as npz + a montage of what the CNN will see."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import click

from gradmeta.core.concepts import KIND_WORDS
from gradmeta.core.console import reports_errors, setup_logging, stage_item
from gradmeta.core.params import load_params
from gradmeta.datasets import DataConfig
from gradmeta.datasets.stage import DownloadPaths, run, write
from gradmeta.runtime import configure


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
    data = run(cfg, concept)
    splits = ", ".join(f"{s}: {int((data.split == s).sum())}" for s in dict.fromkeys(data.split.tolist()))
    log.info("%s: %d images (%s), %s: %s", concept, len(data), splits, KIND_WORDS[data.kind],
             data.provenance["description"])
    write(data, DownloadPaths(out_dir, samples_dir))


if __name__ == "__main__":
    main()
