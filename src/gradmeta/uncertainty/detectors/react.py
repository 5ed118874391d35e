"""ReAct (Sun, Guo & Li, "ReAct: Out-of-distribution Detection With Rectified Activations",
NeurIPS 2021), with the energy score.

Fit: c = the ``percentile``-th percentile of the training penultimate activations. Score:
logits' = W min(z, c) + b; energy score (paper, higher = in-distribution) = logsumexp(logits').
Here ``predict_features`` = -logsumexp(logits') and ``score_features`` = logsumexp(logits').
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import FeatureDetector
from gradmeta.uncertainty.detectors.registry import Param, register_detector


@register_detector("react", fitted=True, params={"percentile": Param(float, min=0.0, max=100.0,
                                                                     min_exclusive=True,
                                                                     doc="the training activations' clip percentile")})
class ReAct(FeatureDetector):
    """Energy of the logits recomputed from activations clipped at a training percentile."""

    def __init__(self, head: nn.Linear, percentile: float = 90.0):
        if not 0.0 < percentile <= 100.0:
            raise GradmetaError(f"ReAct: percentile must be in (0, 100], got {percentile}")
        self.weight = head.weight.detach().double()
        self.bias = None if head.bias is None else head.bias.detach().double()
        self.percentile = percentile

    @classmethod
    def from_params(cls, params: dict[str, Any], head: nn.Linear) -> ReAct:
        return cls(head, params["percentile"])

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> ReAct:
        # numpy's linear-interpolation quantile, as torch.quantile's, without its 16M-element limit
        self.clip = float(np.quantile(z.double().flatten().cpu().numpy(), self.percentile / 100.0))
        self.fitted = True
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save: the clip value (the head comes from the model)."""
        self._check_fitted()
        return {"clip": torch.tensor(self.clip, dtype=torch.float64)}

    def restore(self, state: dict[str, torch.Tensor]) -> ReAct:
        """The detector fitted with a saved :meth:`state`."""
        self.clip = float(state["clip"])
        self.fitted = True
        return self

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        self._check_fitted()
        clipped = z.double().clamp(max=self.clip)
        out = clipped @ self.weight.T + (0.0 if self.bias is None else self.bias)
        return -torch.logsumexp(out, dim=1)
