"""Relative Mahalanobis distance, RMD (Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan, "A Simple Fix to
Mahalanobis Distance for Improving Near-OOD Detection", arXiv 2106.09022, 2021).

Fit, on the penultimate features z: the class means mu_c and tied covariance Sigma of Mahalanobis
(:mod:`.mahalanobis`), and one class-agnostic Gaussian, the background: mean mu_0 and covariance
Sigma_0 of all training features. With MD_c(z) = (z - mu_c)^T Sigma^-1 (z - mu_c) and
MD_0(z) = (z - mu_0)^T Sigma_0^-1 (z - mu_0), RMD_c(z) = MD_c(z) - MD_0(z).

Score (paper, higher = in-distribution): -min_c RMD_c(z). Here ``predict_features`` = min_c RMD_c(z)
= min_c MD_c(z) - MD_0(z) (outlier score) and ``score_features`` its negation. Subtracting the
background distance removes the directions every class shares (OpenOOD's RMDS row). Cost: two
(n, D) x (D, D) products.
"""

from __future__ import annotations

import torch

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import scatter_matrix
from gradmeta.uncertainty.detectors.mahalanobis import Mahalanobis, whitener_of
from gradmeta.uncertainty.detectors.registry import register_detector


@register_detector("rmd", fitted=True)
class RelativeMahalanobis(Mahalanobis):
    """Mahalanobis to the nearest class minus Mahalanobis to one Gaussian of all training features."""

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> RelativeMahalanobis:
        """z (n, D) training features, y (n,) their classes."""
        super().fit_features(z, y)
        z = z.double()
        self.background_mean = z.mean(0)
        self.background_precision = torch.linalg.pinv(scatter_matrix(z, self.background_mean) / len(z), hermitian=True)
        self._whiten_background()
        return self

    def _whiten_background(self) -> None:
        self.background_whitener = whitener_of(self.background_precision)
        self.white_background_mean = self.background_mean @ self.background_whitener

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save (float64 tensors)."""
        return {**super().state(), "background_mean": self.background_mean,
                "background_precision": self.background_precision}

    def restore(self, state: dict[str, torch.Tensor]) -> RelativeMahalanobis:
        """The detector fitted with a saved :meth:`state`."""
        super().restore(state)
        self.background_mean = state["background_mean"].double()
        self.background_precision = state["background_precision"].double()
        d = self.means.shape[1]
        if self.background_mean.shape != (d,) or self.background_precision.shape != (d, d):
            raise GradmetaError(f"RelativeMahalanobis: saved background mean {tuple(self.background_mean.shape)} and "
                                f"precision {tuple(self.background_precision.shape)} are not ({d},) and ({d}, {d})")
        self._whiten_background()
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        z = z.double()
        background = ((z @ self.background_whitener - self.white_background_mean) ** 2).sum(1)
        return self.class_distances(z).amin(1) - background
