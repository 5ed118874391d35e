"""Mahalanobis++ (Mueller & Hein, "Mahalanobis++: Improving OOD Detection via Feature
Normalization", ICML 2025, arXiv 2505.18032).

Plain Mahalanobis (:mod:`.mahalanobis`) on L2-normalised penultimate features: z -> z / ||z||_2 before
the class means mu_c and the tied covariance Sigma are fitted, and before every test feature is scored.
Far-OOD inputs often have small feature norms and sit near the origin, where the unnormalised class
Gaussians do not separate them; on the unit sphere the norm no longer hides the direction.

Score (paper, higher = in-distribution): max_c -(z' - mu_c)^T Sigma^-1 (z' - mu_c), z' = z / ||z||_2.
Here ``predict_features`` = min_c (z' - mu_c)^T Sigma^-1 (z' - mu_c) (outlier score) and
``score_features`` its negation, the paper's score. Cost as Mahalanobis (one (n, D) x (D, D) product).
"""

from __future__ import annotations

import torch

from gradmeta.uncertainty.detectors.mahalanobis import Mahalanobis
from gradmeta.uncertainty.detectors.registry import register_detector


def unit_rows(z: torch.Tensor) -> torch.Tensor:
    """Rows of z (n, D) as float64 scaled to L2 norm 1 (a zero row stays 0)."""
    z = z.double()
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


@register_detector("mahalanobis_pp", fitted=True)
class MahalanobisPlusPlus(Mahalanobis):
    """Class-conditional Gaussians with a shared covariance on the unit sphere of the features."""

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> MahalanobisPlusPlus:
        """z (n, D) training features (normalised here), y (n,) their classes."""
        super().fit_features(unit_rows(z), y)
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        return super().predict_features(unit_rows(z), logits)
