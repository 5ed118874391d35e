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
        if len(z) <= len(classes):
            raise GradmetaError(f"{type(self).__name__} needs more training features ({len(z)}) than classes "
                                f"({len(classes)}) to estimate a covariance")
        self.means = torch.stack([z[y == c].mean(0) for c in classes])
        covariance = scatter_matrix(z, self.means, torch.searchsorted(classes, y)) / len(z)
        self.precision = torch.linalg.pinv(covariance, hermitian=True)
        self._whiten()
        return self

    def _whiten(self) -> None:
        self.whitener = whitener_of(self.precision)
        self.white_means = self.means @ self.whitener  # (C, D)
        self.fitted = True

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save (float64 tensors)."""
        self._check_fitted()
        return {"means": self.means, "precision": self.precision}

    def restore(self, state: dict[str, torch.Tensor]) -> Mahalanobis:
        """The detector fitted with a saved :meth:`state`."""
        self.means, self.precision = state["means"].double(), state["precision"].double()
        if self.means.dim() != 2 or self.precision.shape != (self.means.shape[1],) * 2:
            raise GradmetaError(f"{type(self).__name__}: saved means {tuple(self.means.shape)} and precision "
                                f"{tuple(self.precision.shape)} are not (C, D) and (D, D)")
        self._whiten()
        return self

    def feature_width(self) -> int:
        return self.means.shape[1]

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        self.check_width(z)
        return self.class_distances(z.double()).amin(1)

    def class_distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distances (n, C) of float64 features z (n, D) to every class mean."""
        white = z @ self.whitener  # (n, D)
        return torch.cdist(white, self.white_means, compute_mode="donot_use_mm_for_euclid_dist") ** 2


def whitener_of(precision: torch.Tensor) -> torch.Tensor:
    """A square root W (D, D) of a symmetric positive semi-definite precision, precision = W W^T (from
    its eigendecomposition, negative round-off eigenvalues clipped to 0)."""
    eigenvalues, vectors = torch.linalg.eigh(precision)
    return vectors * eigenvalues.clamp(min=0).sqrt()
