"""Mahalanobis (Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution
Samples and Adversarial Attacks", NeurIPS 2018), on the penultimate features, without input
preprocessing or feature ensembles.

Fit: class means mu_c and one shared (tied) covariance Sigma of the training features z.
Score (paper): max_c -(z - mu_c)^T Sigma^-1 (z - mu_c), higher = in-distribution.
Here: ``predict_features`` = min_c (z - mu_c)^T Sigma^-1 (z - mu_c) (outlier score), and
``score_features`` its negation, the paper's score.

Computed through a square root of the precision, Sigma^-1 = W W^T (from its eigendecomposition,
negative round-off eigenvalues clipped to 0): the distance is ||z W - mu_c W||^2, which costs one
(n, D) x (D, D) product for all classes instead of one per class.
"""

from __future__ import annotations

import torch

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import FeatureDetector, scatter_matrix
from gradmeta.uncertainty.detectors.registry import register_detector


@register_detector("mahalanobis", fitted=True)
class Mahalanobis(FeatureDetector):
    """Class-conditional Gaussians with a shared covariance; the pseudo-inverse guards rank deficiency."""

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Mahalanobis:
        """z (n, D) training features, y (n,) their classes."""
        if y is None:
            raise GradmetaError("Mahalanobis needs the classes of its training images (labels)")
        z, y = z.double(), y.long()
        classes = torch.unique(y)
        if len(classes) < 2:
            raise GradmetaError("Mahalanobis needs training features of at least 2 classes")
        self.means = torch.stack([z[y == c].mean(0) for c in classes])
        covariance = scatter_matrix(z, self.means, torch.searchsorted(classes, y)) / len(z)
        self.precision = torch.linalg.pinv(covariance, hermitian=True)
        self._whiten()
        return self

    def _whiten(self) -> None:
        eigenvalues, vectors = torch.linalg.eigh(self.precision)
        self.whitener = vectors * eigenvalues.clamp(min=0).sqrt()  # (D, D): precision = W W^T
        self.white_means = self.means @ self.whitener  # (C, D)
        self.fitted = True

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save (float64 tensors)."""
        self._check_fitted()
        return {"means": self.means, "precision": self.precision}

    def restore(self, state: dict[str, torch.Tensor]) -> Mahalanobis:
        """The detector fitted with a saved :meth:`state`."""
        self.means, self.precision = state["means"].double(), state["precision"].double()
        self._whiten()
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        white = z.double() @ self.whitener  # (n, D)
        distances = torch.cdist(white, self.white_means, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        return distances.amin(1)
