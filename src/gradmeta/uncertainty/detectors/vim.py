"""ViM (Wang, Li, Feng & Zhang, "ViM: Out-Of-Distribution with Virtual-logit Matching", CVPR 2022).

Fit, from the training features z and the head (W, b): the origin u = -pinv(W) b; the principal
subspace P of the covariance of z - u (its ``dim`` leading eigenvectors); alpha = mean over the
training set of max logit / mean of the norm of the residual (z - u) projected off P.
Score: the virtual logit v = alpha * ||(z - u) off P||; the paper's OOD score is the softmax
probability of v among the logits and v. Here ``predict_features`` = v - logsumexp(logits), the
logit of that probability (monotone in it; higher = out-of-distribution), and ``score_features``
its negation, logsumexp(logits) - v (energy minus virtual logit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import ROWS_PER_BLOCK, FeatureDetector, ModelSizes, scatter_matrix
from gradmeta.uncertainty.detectors.registry import Param, register_detector


@register_detector("vim", fitted=True, params={
    "dim": Param(int, min=1, default=128, doc="the principal subspace kept (the rest is the residual)")})
class ViM(FeatureDetector):
    """Virtual logit from the feature residual outside the principal subspace, matched to the logits."""

    def __init__(self, head: nn.Linear, dim: int):
        self.weight = head.weight.detach().double()
        self.bias = torch.zeros(self.weight.shape[0], dtype=torch.float64) if head.bias is None \
            else head.bias.detach().double()
        if not 0 < dim < self.weight.shape[1]:
            raise GradmetaError(f"ViM: dim must be in [1, {self.weight.shape[1] - 1}] (feature size "
                                f"{self.weight.shape[1]}), got {dim}")
        self.dim = dim

    @classmethod
    def from_params(cls, params: dict[str, Any], head: nn.Linear) -> ViM:
        return cls(head, params["dim"])

    @classmethod
    def size_problems(cls, params: Mapping[str, Any], sizes: ModelSizes | None) -> dict[str, str]:
        """``dim`` must leave a null space of the D penultimate features."""
        dim = params["dim"]
        if sizes is None or 0 < dim < sizes.features:
            return {}
        return {"dim": f"must be in [1, {sizes.features - 1}] (the model's penultimate layer has {sizes.features} "
                       f"features), got {dim}"}

    def _logits(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.weight.T + self.bias

    def _residual_norm(self, z: torch.Tensor) -> torch.Tensor:
        centred = z - self.origin
        return (centred @ self.null_space).norm(dim=1)

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> ViM:
        if len(z) < 2:
            raise GradmetaError(f"ViM needs at least 2 training features to estimate their principal subspace, "
                                f"got {len(z)}")
        z = z.double()
        self.origin = -(torch.linalg.pinv(self.weight) @ self.bias)
        covariance = scatter_matrix(z, self.origin) / len(z)
        _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
        self.null_space = vectors[:, : z.shape[1] - self.dim]  # all but the `dim` leading directions
        blocks = [slice(i, i + ROWS_PER_BLOCK) for i in range(0, len(z), ROWS_PER_BLOCK)]
        max_logit = torch.cat([self._logits(z[b]).amax(1) for b in blocks])
        residual = torch.cat([self._residual_norm(z[b]) for b in blocks])
        self.alpha = float(max_logit.mean() / residual.mean())
        self.fitted = True
        return self

    def feature_width(self) -> int:
        return self.origin.shape[0]

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save (the head comes from the model)."""
        self._check_fitted()
        return {"origin": self.origin, "null_space": self.null_space, "alpha": torch.tensor(self.alpha, dtype=torch.float64)}

    def restore(self, state: dict[str, torch.Tensor]) -> ViM:
        """The detector fitted with a saved :meth:`state`."""
        self.origin, self.null_space = state["origin"].double(), state["null_space"].double()
        d = self.weight.shape[1]
        if self.origin.shape != (d,) or self.null_space.shape != (d, d - self.dim):
            raise GradmetaError(f"ViM: a saved state of shapes {tuple(self.origin.shape)}, {tuple(self.null_space.shape)} "
                                f"does not fit {d} features and dim = {self.dim} (expected ({d},), ({d}, {d - self.dim}))")
        self.alpha = float(state["alpha"])
        self.fitted = True
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        z = z.double()
        virtual = self.alpha * self._residual_norm(z)
        return virtual - torch.logsumexp(self._logits(z), dim=1)
