"""Rule for ``nn.BatchNorm1d/2d/3d`` in eval mode (running statistics).

y = (x - running_mean) / sqrt(running_var + eps) * w + b, per channel (dimension 1). In eval mode
the statistics are constants, so samples do not interact and sample k's gradients are
dW[c] = sum over positions of g_k[c] * xhat_k[c] and db[c] = sum of g_k[c]. Without running
statistics (``track_running_stats=False``) a BatchNorm normalises with the batch's own statistics
even in eval mode: samples interact and there is no per-sample gradient; the rule's refusal
(:func:`batch_statistics`) makes the plan refuse such a model.
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs
from gradmeta.uncertainty.gradients.rules.affine import affine_moments
from gradmeta.uncertainty.gradients.rules.registry import register_rule

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batch_statistics(module: nn.Module) -> str | None:
    """Why a BatchNorm (of any kind) that normalises with batch statistics cannot be measured: it makes
    samples interact. None for every other module."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and (module.training or module.running_mean is None):
        return ("a BatchNorm that normalises with the batch's statistics (train mode, or track_running_stats=False) "
                "mixes samples, so per-sample gradients are undefined; use running statistics (eval mode)")
    return None


@register_rule(*BATCH_NORMS, applies=lambda m: m.affine and m.running_mean is not None, name="batchnorm",
               refuses=batch_statistics)
def batchnorm_moments(module: nn.modules.batchnorm._BatchNorm, a: torch.Tensor, g: torch.Tensor,
                      needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a BatchNorm in eval mode."""
    shape = (1, -1) + (1,) * (a.dim() - 2)
    xhat = (a - module.running_mean.reshape(shape)) * torch.rsqrt(module.running_var.reshape(shape) + module.eps)
    return affine_moments(xhat, g, (0,), True, True, needs)
