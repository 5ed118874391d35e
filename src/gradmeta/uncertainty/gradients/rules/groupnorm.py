"""Rule for ``nn.GroupNorm`` (affine): each sample is normalised with its own statistics per group,
so samples never interact. Sample k's gradients are dW[c] = sum over positions of g_k[c] *
xhat_k[c] and db[c] = sum of g_k[c], xhat the group-normalised input (``F.group_norm`` without affine)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs
from gradmeta.uncertainty.gradients.rules.affine import affine_moments
from gradmeta.uncertainty.gradients.rules.registry import register_rule


@register_rule(nn.GroupNorm, applies=lambda m: m.affine, name="groupnorm")
def groupnorm_moments(module: nn.GroupNorm, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a GroupNorm."""
    xhat = F.group_norm(a, module.num_groups, None, None, module.eps)
    return affine_moments(xhat, g, (0,), True, True, needs)
