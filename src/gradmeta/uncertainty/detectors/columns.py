"""The ``detector/<column>`` columns of the features table: every detector of ``detectors.use`` scored
on a concept's images, in gradmeta's sign (higher = more likely in-distribution and correct).

Each detector names its columns (:meth:`Detector.columns`): ``detector/<name>`` for one score
(``detector/mahalanobis``, ``detector/knn``, ``detector/vim``, ``detector/react`` from the fitted
state, ``detector/odin`` as T log of the paper's score), and MC dropout's three,
``detector/mc_entropy``, ``detector/mc_mutual_information``, ``detector/mc_variation_ratio``.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import Detector, SharedFeatures
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import fresh_detector
from gradmeta.uncertainty.detectors.registry import REGISTRY

PREFIX = "detector/"


def detector_columns(model: nn.Module, images: torch.Tensor, cfg: DetectorsConfig,
                     fitted: dict[str, Detector],
                     seconds: dict[str, float] | None = None, offset: int = 0) -> dict[str, torch.Tensor]:
    """``detector/<column>`` -> float64 scores (n,) for ``images`` (N, ...) in ``cfg.use`` order;
    ``fitted``: the state of the detectors fitted on training features (the detectors stage); the
    others are built from their params. ``seconds[name]``, when given, receives each detector's wall
    time (the first that needs the penultimate features includes them: they are computed once).

    Everything runs in batches of ``cfg.chunk_size`` images, and ``offset`` (a multiple of it) is
    the position of ``images[0]`` in the whole set: a slice of the set starting at a batch boundary
    gets the same scores, bit for bit, as the whole set (MC dropout's masks are seeded per batch)."""
    if offset % cfg.chunk_size:
        raise GradmetaError(f"offset {offset} is not a multiple of detectors.chunk_size {cfg.chunk_size}")
    out: dict[str, torch.Tensor] = {}
    shared = SharedFeatures(model, images, cfg.chunk_size)
    for name in cfg.use:
        start = time.perf_counter()
        if REGISTRY[name].fitted:
            if name not in fitted:
                raise GradmetaError(f"detector {name!r} has no fitted state: run the detectors stage")
            detector = fitted[name]
        else:
            detector = fresh_detector(name, model, images[:1], cfg)
        out.update({PREFIX + k: v for k, v in detector.columns(model, images, shared, cfg.chunk_size, offset).items()})
        if seconds is not None:
            seconds[name] = time.perf_counter() - start
    return out
