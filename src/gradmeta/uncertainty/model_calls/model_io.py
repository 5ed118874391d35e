"""What gradmeta needs of a user's model at its two ends: inputs of the dtype its weights have, and
logits out: one tensor (N, classes). Anything else is one clear error, not an AttributeError from
deep inside torch."""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError


def check_input_dtype(model: nn.Module, images: torch.Tensor) -> None:
    """Refuse floating-point ``images`` of another dtype than the model's floating-point weights
    (float16 or float64 images for a float32 model): torch would fail deep inside the first layer."""
    weights = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weights is not None and images.is_floating_point() and images.dtype != weights.dtype:
        raise GradmetaError(f"images are {images.dtype} but the model's weights are {weights.dtype}: convert one "
                            f"to the other (images.to({weights.dtype}), or model.to({images.dtype}))")


def checked_logits(output: object, n: int | None = None) -> torch.Tensor:
    """``output`` of a model's forward, which must be its logits: a tensor (N, classes) (N = ``n`` when given)."""
    if not isinstance(output, torch.Tensor):
        kind = type(output).__name__
        hint = " (return the logits tensor alone, or wrap the model so that it does)" if isinstance(
            output, (tuple, list, dict)) else ""
        raise GradmetaError(f"the model returned a {kind}; gradmeta needs its logits, one tensor (N, classes){hint}")
    if output.dim() != 2 or (n is not None and output.shape[0] != n):
        raise GradmetaError(f"the model returned a tensor of shape {tuple(output.shape)}; gradmeta needs its logits, "
                            f"one tensor (N, classes){'' if n is None else f' with N = {n}'}")
    return output
