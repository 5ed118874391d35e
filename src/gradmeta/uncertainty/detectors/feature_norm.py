"""Feature norm: the L2 norm of the penultimate features, ||z||_2, as a score of its own.

In-distribution inputs of a trained classifier tend to have larger penultimate feature norms than
far-OOD inputs (noise, textures), which sit near the origin (Mueller & Hein 2025 give it as the reason
plain Mahalanobis fails there; Igoe et al. 2022, arXiv 2205.10439, show gradient norms at the last
layer are confidence times this norm). Score (higher = in-distribution): ||z||_2; ``predict_features``
= -||z||_2. Nothing to fit; cost: one norm per image of the shared penultimate features.
"""

from __future__ import annotations

import torch

from gradmeta.uncertainty.detectors.base import StatelessFeatureDetector
from gradmeta.uncertainty.detectors.registry import register_detector


@register_detector("feature_norm")
class FeatureNorm(StatelessFeatureDetector):
    """The penultimate features' L2 norm (nothing to fit)."""

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        return -z.double().norm(dim=1)
