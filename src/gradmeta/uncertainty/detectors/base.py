"""What every detector shares: the score convention and the penultimate-feature hook.

Convention (pytorch-ood's API shape, gradmeta's sign): ``predict_features`` / ``predict`` return
*outlier* scores like pytorch-ood (higher = more likely out-of-distribution); ``score_features`` /
``score`` return gradmeta's scores, their negation (higher = more likely in-distribution and
correct). Each detector's docstring says how its paper's sign maps to these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.core.hooks import forward_with_hooks


class FeatureDetector(ABC):
    """A detector on penultimate features z (n, D) (and logits where it needs them)."""

    fitted: bool = False

    @abstractmethod
    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Outlier scores float64 (n,), higher = more likely out-of-distribution (pytorch-ood's sign)."""

    def score_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """gradmeta's convention: higher = more likely in-distribution; float64 (n,)."""
        return -self.predict_features(z, logits)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise GradmetaError(f"{type(self).__name__} is not fitted: call fit_features first")


def logits_layer(model: nn.Module, probe: torch.Tensor) -> nn.Linear:
    """The ``nn.Linear`` whose output is the model's logits (found on ``probe``), for detectors that
    need the penultimate features (its input) or the head's weights."""
    outputs: dict[int, torch.Tensor] = {}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    logits = forward_with_hooks(model, linears, lambda mod, i, o: outputs.__setitem__(id(mod), o), probe)
    for m in linears:
        if outputs.get(id(m)) is logits:
            return m
    raise GradmetaError("the detector needs a model whose logits come straight out of an nn.Linear layer")


def penultimate(model: nn.Module, x: torch.Tensor, chunk_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(features (m, D), logits (m, C)) of consecutive chunks of ``x`` in eval mode, no gradients;
    features are the input of the logits layer."""
    head = logits_layer(model, x[:1])
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda mod, i, o: captured.append(i[0].detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), chunk_size):
                captured.clear()
                logits = model(x[start: start + chunk_size])
                yield captured[0].flatten(1), logits
    finally:
        handle.remove()
        model.train(was_training)


ROWS_PER_BLOCK = 8192  # rows per block of a whole-set reduction: memory stays flat in n


def scatter_matrix(z: torch.Tensor, centres: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """sum_i (z_i - c_i)(z_i - c_i)^T, float64 (D, D), accumulated over blocks of rows (no whole-size
    centred copy). c_i = ``centres`` (D,), or ``centres[index[i]]`` for centres (C, D) and index (n,)."""
    out = torch.zeros(z.shape[1], z.shape[1], dtype=torch.float64)
    for start in range(0, len(z), ROWS_PER_BLOCK):
        rows = slice(start, start + ROWS_PER_BLOCK)
        d = z[rows].double() - (centres if index is None else centres[index[rows]])
        out += d.T @ d
    return out
