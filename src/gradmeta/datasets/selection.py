"""Which images of a source a concept takes: those its image list names (test split only), then a seeded
subset of ``count`` of them (all when None), drawn from the concept's own stream ``<concept>/<split>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gradmeta.datasets.assemble import stream_rng
from gradmeta.datasets.image_list import checked_list_path, match_image_list, read_image_list
from gradmeta.datasets.imageops import subsample_indices

if TYPE_CHECKING:
    from gradmeta.datasets.config import ConceptSpec, DataConfig


def positions_by_index(split: str, n: int) -> list[str]:
    """The names of an array archive's images: ``<split>/<position>``."""
    return [f"{split}/{i}" for i in range(n)]


def choose(spec: ConceptSpec, cfg: DataConfig, split: str, available: int, count: int | None,
           keys: Callable[[], list[str]], archive: str) -> np.ndarray:
    """Sorted positions among the ``available`` images of one split: with ``spec.image_list`` (applied to the
    test split) the images it names (``keys()`` gives their names, see :mod:`gradmeta.datasets.image_list`),
    else all; then a seeded subset of ``count`` of those (None = all of them)."""
    candidates = np.arange(available)
    if spec.image_list is not None and split == "test":
        where = f"{cfg.params_file}: data.concepts.{spec.name}.image_list"
        path = checked_list_path(spec.image_list, where)
        candidates = match_image_list(read_image_list(path), keys(), path, archive)
    return candidates[subsample_indices(len(candidates), count, stream_rng(cfg.seed, f"{spec.name}/{split}"))]
