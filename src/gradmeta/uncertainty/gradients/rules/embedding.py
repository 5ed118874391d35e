"""Rule for ``nn.Embedding``: the per-sample weight gradient is sparse.

Sample k's gradient of the (num_embeddings, dim) table has row i = the sum of g_k at the positions
where sample k's input holds index i (0 for indices it does not use, and for ``padding_idx``). Its
moments are computed from the used rows only (segment sums over (sample, index) pairs), the
unused rows counted as zeros: power sums are unchanged by zeros, and the extremes include 0
wherever a sample leaves a row unused. ``max_norm`` (renormalises the table in the forward) and
``scale_grad_by_freq`` (scales by counts over the whole batch) are left to the generic path.
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs
from gradmeta.uncertainty.gradients.rules.registry import register_rule


def _plain(m: nn.Embedding) -> bool:
    return m.max_norm is None and not m.scale_grad_by_freq


@register_rule(nn.Embedding, applies=_plain, name="embedding", sample_dims=lambda m, ndim: tuple(range(ndim)))
def embedding_moments(module: nn.Embedding, ids: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` gradients of an Embedding; ids (n, ...), g (n, ..., dim)."""
    n, dim = len(ids), module.embedding_dim
    ids = ids.reshape(n, -1).long()
    g = g.reshape(n, -1, dim)
    if module.padding_idx is not None:
        g = g * (ids != module.padding_idx).unsqueeze(-1)
    keys = (torch.arange(n, device=ids.device)[:, None] * module.num_embeddings + ids).flatten()
    unique, inverse = torch.unique(keys, return_inverse=True)
    rows = torch.zeros(len(unique), dim, dtype=torch.float64, device=g.device)
    rows.index_add_(0, inverse, g.reshape(-1, dim).double())  # the used rows of each sample's gradient
    owner = torch.div(unique, module.num_embeddings, rounding_mode="floor")
    count = module.num_embeddings * dim
    used = torch.bincount(owner, minlength=n) * dim  # entries of used rows per sample
    return {"weight": _sparse_moments(rows, owner, n, count, used < count, needs)}


def _segment(values: torch.Tensor, owner: torch.Tensor, n: int, reduce: str) -> torch.Tensor:
    """Per-sample reduction of per-row values (rows, ) by their owning sample."""
    init = {"sum": 0.0, "amax": float("-inf"), "amin": float("inf")}[reduce]
    out = torch.full((n,), init, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, owner, values, reduce=reduce, include_self=True)


def _sparse_moments(rows: torch.Tensor, owner: torch.Tensor, n: int, count: int, has_zeros: torch.Tensor,
                    needs: Needs) -> Moments:
    """Moments of n tensors of ``count`` entries each, given their non-implicit rows (owner per row)."""
    m = Moments(count)
    powers = {k: _segment(rows.pow(k).sum(1) if k > 1 else rows.sum(1), owner, n, "sum")
              for k, wanted in ((1, needs.mean), (2, needs.sumsq), (3, needs.higher), (4, needs.higher)) if wanted}
    if needs.l1:
        m.l1 = _segment(rows.abs().sum(1), owner, n, "sum")
    if needs.sumsq:
        m.sumsq = powers[2]
    if needs.extremes:
        top, bottom = _segment(rows.amax(1), owner, n, "amax"), _segment(rows.amin(1), owner, n, "amin")
        m.max = torch.where(has_zeros, top.clamp_min(0.0), top)  # unused rows are zeros
        m.min = torch.where(has_zeros, bottom.clamp_max(0.0), bottom)
    if needs.mean:
        mean = powers[1] / count
        m.mean = mean
        if needs.sumsq:
            e2 = powers[2] / count
            m.m2 = (e2 - mean * mean).clamp_min(0.0)
        if needs.higher:
            e3, e4 = powers[3] / count, powers[4] / count
            m.m3 = e3 - 3 * mean * e2 + 2 * mean**3
            m.m4 = e4 - 4 * mean * e3 + 6 * mean**2 * e2 - 3 * mean**4
    return m
