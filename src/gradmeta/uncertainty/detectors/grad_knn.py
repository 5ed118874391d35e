"""Gradient KNN: k-nearest-neighbour cosine distance in the space of the logits layer's per-sample
gradients (after GROOD, "GROOD: Gradient-Aware Out-of-Distribution Detection", TMLR 2025,
arXiv 2312.14427, which compares gradients with nearest neighbours; here the gradient is the
cross-entropy's at the predicted class, the paper's quantity, and the comparison is KNN's, Sun et
al. ICML 2022, on unit gradients).

Fit: a bank of training images' gradient directions, a seeded subset of ``bank_size`` of them (all
if fewer), stored as their two unit factors (:mod:`.last_layer`): e_i / ||e_i|| (C,) and
a~_i / ||a~_i|| (D + 1,). Score (higher = in-distribution): the k-th largest cosine similarity
cos(g, g_i) = cos(e, e_i) cos(a~, a~_i) over the bank; ``predict_features`` = minus that (the k-th
nearest cosine distance, 1 - cos, less 1: the protocol's predict = -score). Exact and cheap: per image
one (C x B) and one ((D + 1) x B) product instead of one (C (D + 1) x B) product over materialised
gradients, and a bank of B (C + D + 1) numbers instead of B C (D + 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import seed_param
from gradmeta.uncertainty.detectors.base import FeatureDetector, ModelSizes, bank_problems, check_bank, seeded_rows
from gradmeta.uncertainty.detectors.last_layer import error_directions, input_directions
from gradmeta.uncertainty.detectors.registry import Param, register_detector


@register_detector("grad_knn", fitted=True, params={
    "k": Param(int, min=1, doc="the neighbour whose similarity is the score"),
    "bank_size": Param(int, min=1, allow_none=True, doc="train images in the bank (null: all)"),
    "seed": seed_param("which train images form the bank")})
class GradKNN(FeatureDetector):
    """k-th largest cosine similarity of the logits layer's gradient to a bank of training gradients.

    ``head``: the model's logits layer (``nn.Linear``; its weights turn penultimate features into
    logits). ``bank_size``: a seeded (``seed``) sample of that many training images, sorted by
    position (None, or at least as many as there are: every one)."""

    def __init__(self, head: nn.Linear, k: int = 10, bank_size: int | None = 5000, seed: int = 0,
                 chunk_size: int = 1024):
        if k < 1:
            raise GradmetaError(f"GradKNN: k must be a positive integer, got {k}")
        self.weight = head.weight.detach().double()
        self.bias = None if head.bias is None else head.bias.detach().double()
        self.k, self.bank_size, self.seed, self.chunk_size = k, bank_size, seed, chunk_size

    @classmethod
    def from_params(cls, params: dict[str, Any], head: nn.Linear) -> GradKNN:
        return cls(head, **params)

    @classmethod
    def size_problems(cls, params: Mapping[str, Any], sizes: ModelSizes | None) -> dict[str, str]:
        return bank_problems(params, sizes)

    def _logits(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.weight.T + (0.0 if self.bias is None else self.bias)

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> GradKNN:
        """z (n, D) training features; the bank is their gradients' directions (n must be at least k)."""
        z = seeded_rows(z, self.bank_size, self.seed)
        check_bank("GradKNN", len(z), self.k)
        z = z.double()
        self.bank_errors, self.bank_inputs = error_directions(self._logits(z)), input_directions(z)
        self.fitted = True
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save: the bank's unit error (B, C) and input (B, D + 1) factors."""
        self._check_fitted()
        return {"bank_errors": self.bank_errors, "bank_inputs": self.bank_inputs}

    def restore(self, state: dict[str, torch.Tensor]) -> GradKNN:
        """The detector fitted with a saved :meth:`state`."""
        errors, inputs = state["bank_errors"].double(), state["bank_inputs"].double()
        c, d = self.weight.shape
        if errors.dim() != 2 or inputs.dim() != 2 or errors.shape != (len(inputs), c) or inputs.shape[1] != d + 1:
            raise GradmetaError(f"GradKNN: a bank of shapes {tuple(errors.shape)} and {tuple(inputs.shape)} does not "
                                f"fit a logits layer of {c} classes and {d} features")
        check_bank("GradKNN", len(errors), self.k)
        self.bank_errors, self.bank_inputs = errors, inputs
        self.fitted = True
        return self

    def similarities(self, z: torch.Tensor) -> torch.Tensor:
        """The k-th largest cosine similarity (n,) of each feature row's gradient to the bank. The
        (n, D + 1) x (D + 1, B) product of the input factors runs in float32 (unit vectors: cosines to
        about 1e-7; the float64 product took as long as every other new detector together); the
        rest in float64."""
        z = z.double()
        e, a = error_directions(self._logits(z)), input_directions(z).float()
        bank_inputs = self.bank_inputs.float()
        out = [((e[i: i + self.chunk_size] @ self.bank_errors.T) * (a[i: i + self.chunk_size] @ bank_inputs.T).double())
               .topk(self.k, dim=1).values[:, -1] for i in range(0, len(z), self.chunk_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        return -self.similarities(z)
