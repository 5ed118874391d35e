"""GradNorm as a detector object (Huang, Geng & Li, NeurIPS 2021; the formula: :mod:`gradmeta.uncertainty.gradnorm`).

The pipeline computes it in the gradient engine's own pass as the column ``baseline/gradnorm``; this
class gives the same score on the detector protocol, for a user's model and tensors (nothing to fit),
and as ``detector/gradnorm`` when named in ``detectors.use`` (not by default: the baseline column
already holds it).
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.uncertainty.detectors.base import Detector, SharedFeatures, checked_images, features_of
from gradmeta.uncertainty.detectors.registry import register_detector
from gradmeta.uncertainty.gradnorm import gradnorm_scores


@register_detector("gradnorm")
class GradNorm(Detector):
    """||p - u||_1 * ||a||_1 of the logits layer's input a: higher = in-distribution."""

    def score(self, model: nn.Module, images: torch.Tensor, chunk_size: int = 256) -> torch.Tensor:
        z, logits = features_of(model, checked_images(images), chunk_size)
        return gradnorm_scores(logits, z)

    def columns(self, model: nn.Module, images: torch.Tensor, shared: SharedFeatures, chunk_size: int = 256,
                offset: int = 0) -> dict[str, torch.Tensor]:
        z, logits = shared.get()
        return {self.detector_name: gradnorm_scores(logits, z)}
