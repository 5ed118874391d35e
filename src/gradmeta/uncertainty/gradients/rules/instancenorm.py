"""Rule for ``nn.InstanceNorm1d/2d/3d`` with affine parameters: each sample and channel is
normalised with its own statistics (or with running statistics, when tracked, in eval mode), so
samples never interact. Sample k's gradients are dW[c] = sum over positions of g_k[c] * xhat_k[c]
and db[c] = sum of g_k[c], xhat the normalised input (``F.instance_norm`` without affine)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs
from gradmeta.uncertainty.gradients.rules.affine import affine_moments
from gradmeta.uncertainty.gradients.rules.registry import register_rule


@register_rule(nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, applies=lambda m: m.affine,
               name="instancenorm")
def instancenorm_moments(module: nn.modules.instancenorm._InstanceNorm, a: torch.Tensor, g: torch.Tensor,
                         needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of an affine InstanceNorm."""
    use_input_stats = module.training or not module.track_running_stats
    xhat = F.instance_norm(a, module.running_mean, module.running_var, None, None, use_input_stats,
                           module.momentum if module.momentum is not None else 0.0, module.eps)
    return affine_moments(xhat, g, (0,), True, True, needs)
