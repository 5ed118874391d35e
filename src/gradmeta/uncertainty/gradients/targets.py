"""The losses whose per-sample gradients the engine measures (the gradient *target*).

- ``cross_entropy`` (the paper's): CE(f(x), y) with y the predicted class (or given labels);
  dL/dlogits = p - onehot(y), which sums to 0 over the classes.
- ``kl_uniform``: KL(u || softmax(f(x))) against the uniform distribution u (GradNorm's loss, Huang
  et al. NeurIPS 2021, here for every layer, not only the last); up to a constant it is
  -(1/C) sum_c log p_c, and dL/dlogits = p - u, which sums to 0.
- ``bce_ones``: binary cross-entropy of sigmoid(f(x)) against the all-ones target (Lee & AlRegib,
  ICIP 2020), sum_c softplus(-z_c); dL/dlogits = sigmoid(z) - 1, which does not sum to 0.
Each is written for a batch (summed over samples: samples do not interact in eval mode, so the
batch gradient holds every sample's own) and for one sample (the generic path's vmap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gradmeta.core.errors import GradmetaError


@dataclass(frozen=True)
class Target:
    """A loss of logits (n, C) and labels (n,), summed over samples; ``zero_sum``: its gradient with
    respect to the logits sums to 0 over the classes, so the logits layer's gradient means are 0."""

    name: str
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    zero_sum: bool


def _kl_uniform(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -F.log_softmax(logits, dim=1).mean(1).sum()


def _bce_ones(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logits).sum()


TARGETS = {
    "cross_entropy": Target("cross_entropy", lambda z, y: F.cross_entropy(z, y, reduction="sum"), True),
    "kl_uniform": Target("kl_uniform", _kl_uniform, True),
    "bce_ones": Target("bce_ones", _bce_ones, False),
}


def target_named(name: str) -> Target:
    """The target called ``name``; an unknown name is a GradmetaError listing the known ones."""
    if name not in TARGETS:
        raise GradmetaError(f"unknown gradient target {name!r}, expected one of {', '.join(TARGETS)}")
    return TARGETS[name]
