"""Gradient PCA residual (after GradPCA, Seleznova, Chou, Mayrink Verdun & Kutyniok, "GradPCA:
Leveraging NTK Alignment for Reliable Out-of-Distribution Detection", ICLR 2026, arXiv 2505.16017).

GradPCA's construction: in a well-trained network the gradients of in-distribution inputs lie close
to a low-rank subspace spanned by the class means of the gradients (NTK alignment); PCA of those class
means gives the subspace, and a test input whose gradient leaves it is out-of-distribution.

Here, fit: the per-sample gradient of the logits layer (weight and bias) of every training image,
at its predicted class, as a unit vector u_i = g_i / ||g_i|| = (e_i / ||e_i||) (x) (a~_i / ||a~_i||)
(:mod:`.last_layer`); its class means m_c (over the images' true classes); the top ``dim`` right
singular vectors V (dim, C (D + 1)) of the stacked, uncentred class means (``dim`` = null: all of
them, the span of the class means). Score (higher = in-distribution): minus the residual of the test
gradient's direction outside that subspace, -sqrt(1 - ||V u||^2); ``predict_features`` = the residual.

Where this departs from the paper: the paper takes the Jacobian of the network's outputs and may use
every layer; this takes the gradient of the cross-entropy at the predicted class (the quantity of the
rest of gradmeta), of the logits layer only; gradients are normalised before the class means are
taken and the score is the residual of the normalised gradient, so it measures direction only (the
norm is what ``grad/*`` and GradNorm already measure). The projection needs no materialised
gradient: V_j u = e^T V_j a~ / (||e|| ||a~||) with V_j reshaped to (C, D + 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import ROWS_PER_BLOCK, FeatureDetector, ModelSizes
from gradmeta.uncertainty.detectors.last_layer import error_directions, input_directions
from gradmeta.uncertainty.detectors.registry import Param, register_detector


@register_detector("grad_pca", fitted=True, params={
    "dim": Param(int, min=1, allow_none=True, doc="singular vectors of the class means kept (null: all, at most the "
                                                  "classes)")})
class GradPCA(FeatureDetector):
    """Residual of the logits layer's gradient direction outside the principal subspace of its class means.

    ``head``: the model's logits layer (``nn.Linear``). ``dim``: the subspace's dimension, at most the
    number of classes (None: the number of classes seen in training)."""

    def __init__(self, head: nn.Linear, dim: int | None = None):
        self.weight = head.weight.detach().double()
        self.bias = None if head.bias is None else head.bias.detach().double()
        classes = self.weight.shape[0]
        if dim is not None and not 0 < dim <= classes:
            raise GradmetaError(f"GradPCA: dim must be in [1, {classes}] (the logits layer's classes), got {dim}")
        self.dim = dim

    @classmethod
    def size_problems(cls, params: Mapping[str, Any], sizes: ModelSizes | None) -> dict[str, str]:
        """``dim`` at most the logits layer's C classes."""
        dim = params["dim"]
        if sizes is None or dim is None or dim <= sizes.classes:
            return {}
        return {"dim": f"must be at most the model's {sizes.classes} classes, got {dim}"}

    @classmethod
    def from_params(cls, params: dict[str, Any], head: nn.Linear) -> GradPCA:
        return cls(head, params["dim"])

    def _factors(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z.double()
        logits = z @ self.weight.T + (0.0 if self.bias is None else self.bias)
        return error_directions(logits), input_directions(z)

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> GradPCA:
        """z (n, D) training features, y (n,) their classes (the class means' groups)."""
        if y is None:
            raise GradmetaError("GradPCA needs the classes of its training images (labels)")
        y = torch.as_tensor(y).long()
        classes = torch.unique(y)
        dim = len(classes) if self.dim is None else self.dim
        if dim > len(classes):
            raise GradmetaError(f"GradPCA: dim = {dim}, but the training images have {len(classes)} classes")
        c, d = self.weight.shape
        sums = torch.zeros(len(classes), c, d + 1, dtype=torch.float64)
        index = torch.searchsorted(classes, y)
        for start in range(0, len(z), ROWS_PER_BLOCK):
            e, a = self._factors(z[start: start + ROWS_PER_BLOCK])
            sums.index_add_(0, index[start: start + ROWS_PER_BLOCK], e[:, :, None] * a[:, None, :])
        means = sums / torch.bincount(index, minlength=len(classes)).double()[:, None, None]
        _, _, vt = torch.linalg.svd(means.flatten(1), full_matrices=False)
        self.basis = vt[:dim].reshape(dim, c, d + 1)
        self.fitted = True
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save: the orthonormal basis (dim, C, D + 1) of the subspace."""
        self._check_fitted()
        return {"basis": self.basis}

    def restore(self, state: dict[str, torch.Tensor]) -> GradPCA:
        """The detector fitted with a saved :meth:`state`."""
        basis = state["basis"].double()
        c, d = self.weight.shape
        if basis.dim() != 3 or basis.shape[1:] != (c, d + 1) or not 0 < len(basis) <= c:
            raise GradmetaError(f"GradPCA: a basis of shape {tuple(basis.shape)} does not fit a logits layer of "
                                f"{c} classes and {d} features")
        if self.dim is not None and len(basis) != self.dim:
            raise GradmetaError(f"GradPCA: the saved basis has {len(basis)} directions, dim is {self.dim}")
        self.basis = basis
        self.fitted = True
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        e, a = self._factors(z)
        k, c, d1 = self.basis.shape
        coefficients = ((a @ self.basis.reshape(k * c, d1).T).reshape(len(a), k, c) * e[:, None, :]).sum(2)
        return (1.0 - coefficients.square().sum(1)).clamp_min(0.0).sqrt()
