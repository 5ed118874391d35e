"""Rule for ``nn.LayerNorm`` (elementwise affine): each position of each sample is normalised over
the trailing ``normalized_shape`` dimensions with its own statistics. Sample k's gradients are
dW = sum over its leading positions (e.g. the tokens of (n, T, D)) of g_k * xhat_k and db = the same
sum of g_k, xhat the normalised input (``F.layer_norm`` without affine)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs
from gradmeta.uncertainty.gradients.rules.affine import affine_moments
from gradmeta.uncertainty.gradients.rules.registry import register_rule


@register_rule(nn.LayerNorm, applies=lambda m: m.elementwise_affine, name="layernorm",
               sample_dims=lambda m, ndim: tuple(range(max(ndim - len(m.normalized_shape), 1))))
def layernorm_moments(module: nn.LayerNorm, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a LayerNorm."""
    xhat = F.layer_norm(a, module.normalized_shape, None, None, module.eps)
    k = len(module.normalized_shape)
    param_dims = tuple(range(a.dim() - 1 - k, a.dim() - 1))
    return affine_moments(xhat, g, param_dims, True, module.bias is not None, needs)
