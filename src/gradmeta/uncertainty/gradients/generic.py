"""The generic exact path: per-sample gradients of any parameters through ``torch.func``.

Used for parameters that no rule covers (a module type without a rule, a module called twice, a
shared parameter). Exact, but it runs the model once per sample under ``vmap``: slower than a rule.
Only the named parameters are differentiated.
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs, moments_of
from gradmeta.uncertainty.gradients.targets import TARGETS, Target


def generic_moments(model: nn.Module, names: list[str], x: torch.Tensor, y: torch.Tensor,
                    needs: Needs, target: Target = TARGETS["cross_entropy"]) -> dict[str, Moments]:
    """Moments of the per-sample gradients of the target's loss of (model(x_k), y_k) w.r.t. the named
    parameters (vmap of grad over the chunk x (n, ...), labels y (n,))."""
    from torch.func import functional_call, grad, vmap

    params = dict(model.named_parameters())
    chosen = {k: params[k].detach() for k in names}

    def loss_one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, p, (xi.unsqueeze(0),), strict=False)
        return target.loss(logits, yi.unsqueeze(0))

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))(chosen, x, y)
    return {k: moments_of(v.detach().reshape(v.shape[0], -1), needs) for k, v in per_sample.items()}
