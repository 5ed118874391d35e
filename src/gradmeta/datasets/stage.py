"""The download/import stage's work: :func:`run` prepares one concept as ``DataConfig`` defines it
(a public archive, its synthetic stand-in, generated noise or the user's files); :func:`write` saves
it as ``<out_dir>/<concept>.npz`` and a montage of what the CNN will see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gradmeta.datasets.config import DataConfig
from gradmeta.datasets.imageops import save_montage
from gradmeta.datasets.preparation import prepare_concept
from gradmeta.prepared import PreparedData, save_prepared


@dataclass(frozen=True)
class DownloadPaths:
    """The folders of the prepared npz files and of the montages."""

    out_dir: str = "data/prepared"
    samples_dir: str = "metrics/samples"


def run(cfg: DataConfig, concept: str) -> PreparedData:
    """The prepared images of ``concept`` (uint8 28x28, splits, labels, provenance)."""
    return prepare_concept(concept, cfg)


def write(data: PreparedData, paths: DownloadPaths) -> None:
    """``<out_dir>/<concept>.npz`` and ``<samples_dir>/<concept>.png``, each written atomically."""
    save_prepared(Path(paths.out_dir) / f"{data.concept}.npz", data)
    save_montage(Path(paths.samples_dir) / f"{data.concept}.png", data.images)
