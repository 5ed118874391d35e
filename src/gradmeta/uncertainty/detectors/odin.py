"""ODIN (Liang, Li & Srikant, "Enhancing The Reliability of Out-of-distribution Image Detection in
Neural Networks", ICLR 2018).

Temperature scaling plus an input perturbation: x' = x - epsilon * sign(-grad_x log S_yhat(x; T)),
with S(x; T) = softmax(f(x) / T) and yhat its arg max; score (paper, higher = in-distribution) =
max_c S_c(x'; T). ``predict`` returns its negation (outlier score), ``score`` the paper's score.
In eval mode samples do not interact, so one batched backward gives every image's input gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.core.errors import GradmetaError


class ODIN:
    """Max temperature-scaled softmax after a small step that raises it."""

    def __init__(self, model: nn.Module, temperature: float = 1000.0, epsilon: float = 0.0014):
        if temperature <= 0 or epsilon < 0:
            raise GradmetaError(f"ODIN: temperature must be > 0 and epsilon >= 0, got {temperature}, {epsilon}")
        self.model, self.temperature, self.epsilon = model, temperature, epsilon

    def score(self, x: torch.Tensor, chunk_size: int = 256) -> torch.Tensor:
        """max softmax(f(x') / T), float64 (n,): higher = in-distribution."""
        was_training = self.model.training
        self.model.eval()
        try:
            return torch.cat([self._score_chunk(x[i: i + chunk_size]) for i in range(0, len(x), chunk_size)])
        finally:
            self.model.train(was_training)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Outlier scores (pytorch-ood's sign): -score."""
        return -self.score(x)

    def _score_chunk(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            log_p = F.log_softmax(self.model(x) / self.temperature, dim=1)
            loss = -log_p.max(dim=1).values.sum()  # minus log S_yhat, summed: per-sample gradients
            (grad,) = torch.autograd.grad(loss, x)
        perturbed = x.detach() - self.epsilon * grad.sign()
        with torch.no_grad():
            return F.softmax(self.model(perturbed) / self.temperature, dim=1).amax(1).double()
