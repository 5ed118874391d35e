"""SIRC (Xia & Bouganis, "Augmenting Softmax Information for Selective Classification with
Out-of-Distribution Data", ACCV 2022, arXiv 2207.07506): the softmax confidence S1 combined with a
second, feature-based score S2 that catches out-of-distribution inputs the softmax misses.

Here S1 = p_max (its maximum 1) and S2 = the penultimate feature norm ||z||_2 (higher =
in-distribution; the feature norm rather than KNN, since every model has it and it needs no bank).
Fit, on the training features: a = mean(S2) - 3 std(S2), b = 1 / std(S2). Score (higher = accept):

    SIRC(x) = -(1 - S1) (1 + exp(-b (S2 - a)))

so a confident prediction is rejected only when its feature norm falls well below the training
norms. ``predict_features`` is its negation. 1 - p_max is the sum of the other probabilities (no
cancellation), and the exponent is capped at 700 (finite scores for any input).
"""

from __future__ import annotations

import torch

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import FeatureDetector
from gradmeta.uncertainty.detectors.doctor import softmax_top
from gradmeta.uncertainty.detectors.registry import register_detector


@register_detector("sirc", fitted=True)
class SIRC(FeatureDetector):
    """Softmax confidence times a logistic gate on the feature norm, fitted on training norms."""

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> SIRC:
        """z (n, D) training features (n >= 2): the mean and std of their norms."""
        if len(z) < 2:
            raise GradmetaError(f"SIRC needs at least 2 training features, got {len(z)}")
        norms = z.double().norm(dim=1)
        std = float(norms.std())
        if not std > 0:
            raise GradmetaError("SIRC: the training features' norms do not vary (std 0)")
        self.a, self.b = float(norms.mean()) - 3.0 * std, 1.0 / std
        self.fitted = True
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save: a and b."""
        self._check_fitted()
        return {"a": torch.tensor(self.a, dtype=torch.float64), "b": torch.tensor(self.b, dtype=torch.float64)}

    def restore(self, state: dict[str, torch.Tensor]) -> SIRC:
        """The detector fitted with a saved :meth:`state`."""
        self.a, self.b = float(state["a"]), float(state["b"])
        if not self.b > 0:
            raise GradmetaError(f"SIRC: b must be > 0, got {self.b}")
        self.fitted = True
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        if logits is None:
            raise GradmetaError("SIRC needs the logits of the features")
        _, _, rest = softmax_top(logits)  # 1 - p_max
        gate = 1.0 + torch.exp((-self.b * (z.double().norm(dim=1) - self.a)).clamp(max=700.0))
        return rest * gate
