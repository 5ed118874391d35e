"""Shared by the normalisation rules: per-sample gradients of an elementwise affine ``xhat * w + b``.

For an output y = xhat * w + b with w, b broadcast along the parameter dimensions, sample k's
gradients are dW = sum over the other (position) dimensions of g_k * xhat_k and db = the same sum of
g_k. ``param_dims`` are the dimensions of a sample's tensor (batch dimension excluded) that index
the parameter; every other dimension is summed.
"""

from __future__ import annotations

import torch

from gradmeta.uncertainty.gradients.moments import Moments, Needs, moments_of


def affine_moments(xhat: torch.Tensor, g: torch.Tensor, param_dims: tuple[int, ...], has_weight: bool,
                   has_bias: bool, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients; xhat and g (n, ...) alike."""
    dims = tuple(d for d in range(1, g.dim()) if d - 1 not in param_dims)
    out = {}
    if has_weight:
        out["weight"] = moments_of(_summed(g * xhat, dims), needs, scratch=True)
    if has_bias:
        out["bias"] = moments_of(_summed(g, dims), needs)
    return out


def _summed(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``t`` (n, ...) summed over ``dims``, flattened to (n, K)."""
    return (t.sum(dim=dims) if dims else t).reshape(len(t), -1)
