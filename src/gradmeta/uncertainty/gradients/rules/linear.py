"""Rule for ``nn.Linear``: per-sample gradients from the input a and the output gradient g.

With a 2-D input (n, in) the weight gradient of sample k is the outer product g_k (x) a_k, whose
moments factorise (:func:`moments_of_outer`) and which is never materialised. With extra
dimensions (n, T, in) it is the sum over T of outer products, materialised a block of samples at
a time by a batched matmul (:func:`sequence_linear_moments`, also used by the attention rule).
The bias gradient is g_k (summed over the extra dimensions).
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs, moments_of, moments_of_outer
from gradmeta.uncertainty.gradients.rules.blocks import blockwise_moments
from gradmeta.uncertainty.gradients.rules.registry import any_but_last, register_rule


def sequence_linear_moments(a: torch.Tensor, g: torch.Tensor, needs: Needs) -> Moments:
    """Moments of the per-sample weight gradients sum_t g[k, t] (x) a[k, t] of a linear map applied
    at every position: a (n, ..., in), g (n, ..., out) with the same positions; entries (out, in)."""
    g2 = g.reshape(g.shape[0], -1, g.shape[-1])
    a2 = a.reshape(a.shape[0], -1, a.shape[-1])
    if g2.shape[1] == 1:
        return moments_of_outer(g2[:, 0], a2[:, 0], needs)
    return blockwise_moments(len(g2), g2.shape[-1] * a2.shape[-1], g2,
                             lambda i, j: torch.bmm(g2[i:j].transpose(1, 2), a2[i:j]).flatten(1), needs)


@register_rule(nn.Linear, name="linear", sample_dims=any_but_last)
def linear_moments(module: nn.Linear, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a Linear layer."""
    out = {"weight": sequence_linear_moments(a, g, needs)}
    if module.bias is not None:
        out["bias"] = moments_of(g.reshape(g.shape[0], -1, g.shape[-1]).sum(1), needs)
    return out
