"""The CPU memory layout choice: channels-last for convolutional models whose forward accepts it.

Layout does not change values, only speed: on the CPU the kernels of convolution, max-pooling and
ReLU are several times faster on channels-last tensors (a 1-channel first convolution ~10x,
max-pooling ~14x). The engine's forward hooks pass each fast-path convolution's output on in
channels-last layout; the model itself is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def to_channels_last(t: torch.Tensor, copy: bool = False) -> torch.Tensor:
    """A 4-D ``t`` with channels-last strides (itself if it has them and not ``copy``); other
    tensors as they are (or cloned when ``copy``). One-channel tensors get strides (HW, 1, W, 1)."""
    if t.dim() != 4:
        return t.clone() if copy else t
    if not copy and t.is_contiguous(memory_format=torch.channels_last) and t.stride(1) == 1:
        return t
    return t.clone(memory_format=torch.channels_last)


def accepts_channels_last(model: nn.Module, convs: Sequence[nn.Module], probe: torch.Tensor,
                          standard: torch.Tensor) -> bool:
    """Whether ``model`` should run on channels-last inputs with the modules ``convs`` passing their
    outputs on in that layout. ``standard``: the model's logits of ``probe`` in the standard layout.

    Chosen on the CPU for models with a fast-path convolution whose forward accepts the layout: a
    model that needs the standard one (``x.view(n, -1)`` after a convolution raises) or computes
    other values in it (a custom kernel that assumes the standard layout) keeps it; both are
    checked on the probe.
    """
    if probe.device.type != "cpu" or probe.dim() != 4 or not convs:
        return False
    handles = [conv.register_forward_hook(lambda m, i, o: to_channels_last(o)) for conv in convs]
    try:
        with torch.no_grad():
            relaid = model(to_channels_last(probe))
    except RuntimeError:
        return False
    finally:
        for h in handles:
            h.remove()
    scale = float(standard.abs().max()) if standard.numel() else 0.0
    return relaid.shape == standard.shape and torch.allclose(relaid, standard, rtol=1e-4, atol=1e-4 * scale)
