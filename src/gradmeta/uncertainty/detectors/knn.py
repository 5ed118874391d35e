"""KNN (Sun, Ming, Zhu & Li, "Out-of-Distribution Detection with Deep Nearest Neighbors", ICML 2022).

Features are L2-normalised; the outlier score is the Euclidean distance to the k-th nearest training
feature (paper: the score -r_k is higher for in-distribution; ``score_features`` returns -r_k,
``predict_features`` r_k). A brute-force search over the bank, in chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import seed_param
from gradmeta.uncertainty.detectors.base import FeatureDetector, ModelSizes, bank_problems, check_bank, seeded_rows
from gradmeta.uncertainty.detectors.registry import Param, register_detector


def _normalised(z: torch.Tensor) -> torch.Tensor:
    z = z.double()
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


@register_detector("knn", fitted=True, params={
    "k": Param(int, min=1, doc="the neighbour whose distance is the score"),
    "bank_size": Param(int, min=1, allow_none=True, doc="train images in the bank (null: all)"),
    "seed": seed_param("which train images form the bank")})
class KNN(FeatureDetector):
    """k-th nearest-neighbour distance of normalised features to a bank of training features.

    ``bank_size``: the bank is a seeded (``seed``) sample of that many training features, sorted by
    position (None, or at least as many as there are: every one)."""

    def __init__(self, k: int = 10, chunk_size: int = 1024, bank_size: int | None = 5000, seed: int = 0):
        if k < 1:
            raise GradmetaError(f"KNN: k must be a positive integer, got {k}")
        self.k, self.chunk_size, self.bank_size, self.seed = k, chunk_size, bank_size, seed

    @classmethod
    def size_problems(cls, params: Mapping[str, Any], sizes: ModelSizes | None) -> dict[str, str]:
        return bank_problems(params, sizes)

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> KNN:
        """z (n, D) training features (the bank); n must be at least k."""
        z = seeded_rows(z, self.bank_size, self.seed)
        check_bank("KNN", len(z), self.k)
        self.bank = _normalised(z)
        self.fitted = True
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save: the normalised bank (float64)."""
        self._check_fitted()
        return {"bank": self.bank}

    def restore(self, state: dict[str, torch.Tensor]) -> KNN:
        """The detector fitted with a saved :meth:`state`."""
        check_bank("KNN", len(state["bank"]), self.k)
        bank = state["bank"].double()
        if bank.dim() != 2 or not torch.allclose(bank.norm(dim=1), torch.ones(len(bank), dtype=torch.float64), atol=1e-6):
            raise GradmetaError("KNN: the saved bank is not a matrix of unit rows (the bank is stored L2-normalised)")
        self.bank = bank
        self.fitted = True
        return self

    def feature_width(self) -> int:
        return self.bank.shape[1]

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        self.check_width(z)
        z = _normalised(z)
        out = [torch.cdist(z[i: i + self.chunk_size], self.bank).topk(self.k, dim=1, largest=False).values[:, -1]
               for i in range(0, len(z), self.chunk_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)
