"""ODIN (Liang, Li & Srikant, "Enhancing The Reliability of Out-of-distribution Image Detection in
Neural Networks", ICLR 2018).

Temperature scaling plus an input perturbation: x' = x - epsilon * sign(-grad_x log S_yhat(x; T)),
with S(x; T) = softmax(f(x) / T) and yhat its arg max; score (paper, higher = in-distribution) =
max_c S_c(x'; T). ``predict`` returns its negation (outlier score), ``score`` the paper's score.
In eval mode samples do not interact, so one batched backward gives every image's input gradient.

Its metric-table column ``detector/odin`` is T log of the score: monotone in it, and at T = 1000 the
score differs from 1/C only in the fourth digit, so it would tie in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import DETECTOR_CHUNK_SIZE, Detector, ScoringBatch, chunk_on_device
from gradmeta.uncertainty.detectors.registry import Param, register_detector

# The range where the score is a number: a temperature below MIN_TEMPERATURE makes f(x) / T overflow, one above
# MAX_TEMPERATURE makes every softmax 1/C to the last digit; a step above MAX_EPSILON (images in [0, 1]) moves
# every pixel past the whole range of an image. The paper tunes T in 1..1000 and epsilon in 0..0.004.
MIN_TEMPERATURE, MAX_TEMPERATURE, MAX_EPSILON = 1e-3, 1e6, 1.0


@register_detector("odin", params={
    "temperature": Param(float, min=MIN_TEMPERATURE, max=MAX_TEMPERATURE, doc="softmax temperature"),
    "epsilon": Param(float, min=0.0, max=MAX_EPSILON, doc="input perturbation step (image units)")})
class ODIN(Detector):
    """Max temperature-scaled softmax after a small step that raises it (nothing to fit)."""

    def __init__(self, temperature: float = 1000.0, epsilon: float = 0.0014):
        if not (MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE and 0 <= epsilon <= MAX_EPSILON):
            raise GradmetaError(f"ODIN: temperature must be in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}] and epsilon "
                                f"in [0, {MAX_EPSILON:g}], got {temperature!r}, {epsilon!r}")
        self.temperature, self.epsilon = float(temperature), float(epsilon)

    def score(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        """max softmax(f(x') / T), float64 (N,): higher = in-distribution (in eval mode: the protocol's
        wrapper puts the model there and restores every module's mode afterwards)."""
        return torch.cat([self._score_chunk(model, chunk_on_device(model, images[i: i + chunk_size])).cpu()
                          for i in range(0, len(images), chunk_size)])

    def columns(self, batch: ScoringBatch) -> dict[str, torch.Tensor]:
        return {self.detector_name: self.temperature * torch.log(self.score(batch.model, batch.images, batch.chunk_size))}

    def _score_chunk(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)  # a copy already (chunk_on_device)
        with torch.enable_grad():
            log_p = F.log_softmax(model(x) / self.temperature, dim=1)
            loss = -log_p.max(dim=1).values.sum()  # minus log S_yhat, summed: per-sample gradients
            (grad,) = torch.autograd.grad(loss, x)
        perturbed = x.detach() - self.epsilon * grad.sign()  # a new tensor: the caller's is never handed on
        with torch.no_grad():
            return F.softmax(model(perturbed) / self.temperature, dim=1).amax(1).double()
