"""The rule for a bare parameter every sample shares by broadcasting: a ViT's position embedding
(1, T, D) added to the tokens, its class token (1, 1, D) expanded over the batch and put in front.

Such a parameter is the model's own, used by its forward code rather than by a layer a rule knows,
so without this rule it takes the generic path (the model once per sample under ``vmap``). Its
per-sample gradient is exact in the batched pass: the forward gets, in the parameter's place, a
per-sample copy P (n, ...) of p (p expanded over the batch: the same values, so the same logits),
and the gradient of the summed loss with respect to P[i] is sample i's gradient of p (samples do not
interact in eval mode).

The plan checks on the probe that the model takes the copy (:func:`takes_per_sample_copy`); a
parameter that fails the check keeps the generic path.
"""

from __future__ import annotations

import torch
from torch import nn

NAME = "broadcast"  # the path's name in Plan.paths()


def per_sample_copies(params: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """Full parameter name -> a leaf (n, ...) that requires grad: the parameter (1, ...) repeated n times."""
    return {name: p.detach().expand(n, *p.shape[1:]).clone().requires_grad_(True) for name, p in params.items()}


def forward_with_copies(model: nn.Module, x: torch.Tensor, copies: dict[str, torch.Tensor]) -> object:
    """``model(x)`` with each named parameter replaced by its per-sample copy for the call (hooks run as usual)."""
    if not copies:
        return model(x)
    from torch.func import functional_call  # noqa: PLC0415  (torch.func loads on first use)

    return functional_call(model, copies, (x,), strict=False)


def takes_per_sample_copy(model: nn.Module, name: str, param: torch.Tensor, probe: torch.Tensor) -> bool:
    """Whether parameter ``name`` (shape (1, ...)) can be replaced by a per-sample copy: on the probe
    twice over (a batch of two equal samples), the copy gives the same logits as the parameter; the
    loss of each sample reaches its own row of the copy and not the other's; and both rows get the same
    gradient (the samples are equal). A parameter used in any other way (summed over its first
    dimension, indexed, repeated, used where the batch size may not appear) fails and keeps the generic
    path."""
    if param.dim() < 2 or param.shape[0] != 1:
        return False
    x = torch.cat([probe, probe])
    try:
        with torch.enable_grad():
            want = model(x)
            copies = per_sample_copies({name: param}, 2)
            got = forward_with_copies(model, x, copies)
            if not isinstance(got, torch.Tensor) or not isinstance(want, torch.Tensor) or got.shape != want.shape \
                    or got.dim() != 2 or len(got) != 2:
                return False
            scale = float(want.detach().abs().max()) or 1.0
            if not torch.allclose(got.detach(), want.detach(), rtol=1e-5, atol=1e-6 * scale):
                return False
            first, second = (torch.autograd.grad(got[i].sum(), copies[name], retain_graph=True, allow_unused=True)[0]
                             for i in range(2))
    except (RuntimeError, ValueError, TypeError, IndexError):
        return False
    if first is None or second is None:
        return False
    own = first[0].abs().max()
    tol = 1e-5 * float(own) + 1e-12
    return (float(first[1].abs().max()) <= tol and float(second[0].abs().max()) <= tol
            and torch.allclose(first[0], second[1], rtol=1e-5, atol=tol))
