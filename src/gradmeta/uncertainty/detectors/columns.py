"""The ``detector/<name>`` columns of the features table: every detector of ``detectors.use`` scored
on a concept's images, in gradmeta's sign (higher = more likely in-distribution and correct).

Columns: ``detector/mahalanobis``, ``detector/knn``, ``detector/vim``, ``detector/react`` (from the
fitted state), ``detector/odin`` (as T log of the paper's score, which at T = 1000 differs from 1/C
only in the fourth digit and would tie in float32), and for MC dropout ``detector/mc_entropy``,
``detector/mc_mutual_information``, ``detector/mc_variation_ratio`` (each uncertainty negated).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import FeatureDetector
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import features_of
from gradmeta.uncertainty.detectors.mcdropout import mc_dropout_uncertainty
from gradmeta.uncertainty.detectors.odin import ODIN

PREFIX = "detector/"


def detector_columns(model: nn.Module, images: torch.Tensor, cfg: DetectorsConfig,
                     fitted: dict[str, FeatureDetector],
                     seconds: dict[str, float] | None = None, offset: int = 0) -> dict[str, torch.Tensor]:
    """``detector/<name>`` -> float64 scores (n,) for ``images`` (N, C, H, W) in ``cfg.use`` order;
    ``seconds[name]``, when given, receives each detector's wall time (the first feature detector's
    includes the penultimate features they share).

    Everything runs in batches of ``cfg.chunk_size`` images, and ``offset`` (a multiple of it) is
    the position of ``images[0]`` in the whole set: a slice of the set starting at a batch boundary
    gets the same scores, bit for bit, as the whole set (MC dropout's masks are seeded per batch)."""
    if offset % cfg.chunk_size:
        raise GradmetaError(f"offset {offset} is not a multiple of detectors.chunk_size {cfg.chunk_size}")
    out: dict[str, torch.Tensor] = {}
    z = logits = None
    for name in cfg.use:
        start = time.perf_counter()
        if name in fitted:
            if z is None:
                z, logits = features_of(model, images, cfg.chunk_size)
            out[PREFIX + name] = torch.cat([fitted[name].score_features(z[i: i + cfg.chunk_size],
                                                                        logits[i: i + cfg.chunk_size])
                                            for i in range(0, len(z), cfg.chunk_size)])
        elif name == "odin":  # T log S_max(x'; T): monotone in the paper's score, and it survives float32
            score = ODIN(model, cfg.odin_temperature, cfg.odin_epsilon).score(images, cfg.chunk_size)
            out[PREFIX + name] = cfg.odin_temperature * torch.log(score)
        elif name == "mc_dropout":
            if z is None:
                z, logits = features_of(model, images, cfg.chunk_size)
            mc = mc_dropout_uncertainty(model, images, cfg.mc_passes, cfg.mc_seed, cfg.chunk_size,
                                        first_batch=offset // cfg.chunk_size, head_inputs=z)
            out.update({f"{PREFIX}mc_{k}": -v for k, v in mc.items()})
        if seconds is not None:
            seconds[name] = time.perf_counter() - start
    return out
