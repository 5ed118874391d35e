"""GradNorm (Huang, Geng & Li, "On the Importance of Gradients for Detecting Distributional Shifts
in the Wild", NeurIPS 2021).

Score: the L1 norm of the gradient of the KL divergence between the uniform distribution u and the
softmax p, with respect to the weight W of the last (logits) layer. With logits z = W a + b, the
loss CE(u, p) = -sum_c u_c log p_c has dL/dz = p - u, so dL/dW = (p - u) (x) a and

    GradNorm(x) = ||(p - u) (x) a||_1 = ||p - u||_1 * ||a||_1     (temperature 1).

Sign: the paper finds the score larger for in-distribution inputs, so it is used as is
(higher = more likely in-distribution), like the gradmeta score convention.

The pipeline computes it with :func:`gradnorm_scores` in its one pass over the model
(:mod:`gradmeta.uncertainty.model_pass`) as the column ``baseline/gradnorm``; this
class gives the same score on the detector protocol, for a user's model and tensors (nothing to fit),
and as ``detector/gradnorm`` when named in ``detectors.use`` (not by default: the baseline column
already holds it).
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.uncertainty.detectors.base import DETECTOR_CHUNK_SIZE, Detector, ScoringBatch, checked_images, features_of
from gradmeta.uncertainty.detectors.registry import register_detector


def gradnorm_scores(logits: torch.Tensor, penultimate: torch.Tensor) -> torch.Tensor:
    """GradNorm per sample, float64 (n,), from logits (n, C) and the logits layer's input (n, D)."""
    p = torch.softmax(logits.detach(), dim=1)
    a = penultimate.reshape(len(penultimate), -1)
    return (p - 1.0 / p.shape[1]).abs().sum(1, dtype=torch.float64) * a.abs().sum(1, dtype=torch.float64)


@register_detector("gradnorm")
class GradNorm(Detector):
    """||p - u||_1 * ||a||_1 of the logits layer's input a: higher = in-distribution."""

    def score(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        z, logits = features_of(model, checked_images(images), chunk_size)
        return gradnorm_scores(logits, z)

    def columns(self, batch: ScoringBatch) -> dict[str, torch.Tensor]:
        z, logits = batch.features()
        return {self.detector_name: gradnorm_scores(logits, z)}
