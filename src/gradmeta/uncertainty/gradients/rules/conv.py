"""Rule for ``nn.Conv2d`` (zero padding given as numbers; any stride, dilation, groups).

The per-sample weight gradients are materialised a few samples at a time and reduced in float32
passes, so memory stays bounded whatever the batch:

- grouped formulation (:func:`grouped_conv_weight_grads`): the m samples become the groups of one
  grouped convolution whose weight gradient, computed by the backend's convolution kernels, is
  exactly the stack of per-sample gradients;
- swapped formulation (:func:`swapped_conv_weight_grads`), for groups=1, stride-1 layers with at
  most ``SWAPPED_MAX_IN_CHANNELS`` input channels (typically a first layer): the padded input
  convolved with each sample's output gradient as the kernel; faster there.

The bias gradient of sample k is its output gradient summed over positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.uncertainty.gradients.moments import (
    RAW_ROWS,
    Moments,
    Needs,
    concat_samples,
    moments_from_raw,
    moments_of,
    raw_sums_into,
)
from gradmeta.uncertainty.gradients.rules.registry import register_rule

CONV_BLOCK_BYTES = 13 << 18  # per-sample gradients materialised at once: a few MB stay in cache
SWAPPED_MAX_IN_CHANNELS = 4  # stride-1 convs with this few inputs: the swapped formulation is faster


def _covered(conv: nn.Conv2d) -> bool:
    return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


@register_rule(nn.Conv2d, applies=_covered, name="conv2d")
def conv2d_moments(module: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a Conv2d layer."""
    out = {"weight": conv2d_weight_moments(module, a, g, needs)}
    if module.bias is not None:
        out["bias"] = moments_of(g.sum(dim=(2, 3)), needs)
    return out


def uses_swapped(conv: nn.Conv2d) -> bool:
    """Whether the swapped formulation computes this layer's per-sample weight gradients."""
    return conv.groups == 1 and conv.in_channels <= SWAPPED_MAX_IN_CHANNELS and all(s == 1 for s in conv.stride)


def conv2d_weight_moments(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> Moments:
    """Per-sample weight-gradient moments of a Conv2d from its input a and output gradient g,
    materialised in blocks of at most ``CONV_BLOCK_BYTES``."""
    per_sample_gradients = swapped_conv_weight_grads if uses_swapped(conv) else grouped_conv_weight_grads
    n = a.shape[0]
    most = max(1, CONV_BLOCK_BYTES // (conv.weight.numel() * conv.weight.element_size()))
    block = -(-n // -(-n // most))  # equal blocks of at most `most` samples
    starts = range(0, n, block)
    if needs.higher:  # central moments need each block's values: reduce block by block
        return concat_samples([moments_of(per_sample_gradients(conv, a[i: i + block], g[i: i + block]), needs,
                                          scratch=True) for i in starts])
    raw = a.new_empty(len(RAW_ROWS), n)
    for i in starts:
        raw_sums_into(per_sample_gradients(conv, a[i: i + block], g[i: i + block]), needs, raw[:, i: i + block],
                      scratch=True)
    return moments_from_raw(raw, conv.weight.numel(), needs)


def grouped_conv_weight_grads(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients (m, weight.numel()) in the weight's entry order.

    a (m, in, H, W) is the layer input, g (m, out, H', W') its output gradient. The m samples are
    the groups of one grouped convolution; its weight gradient is their stack.
    """
    m = a.shape[0]
    shape_only = _shape_tensor(conv.weight, (m * conv.out_channels, *conv.weight.shape[1:]))
    per_sample = torch.ops.aten.convolution_backward(
        g.reshape(1, m * g.shape[1], *g.shape[2:]), a.reshape(1, m * a.shape[1], *a.shape[2:]),
        shape_only, None, conv.stride, conv.padding, conv.dilation, False, (0, 0), m * conv.groups,
        (False, True, False))[1]
    return per_sample.reshape(m, -1)


def swapped_conv_weight_grads(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients (m, weight.numel()) of a groups=1, stride-1 Conv2d, entries in
    (in_channel, out_channel, kh, kw) order (statistics do not depend on the order).

    dW[o, c, i, j] = sum_hw g[o, h, w] x_pad[c, h + i*d, w + j*d] is a convolution of the padded
    input (input channels as the batch, samples as channels) with each sample's output gradient
    as the kernel (samples as groups); the original dilation d becomes its stride.
    """
    m, c_in = a.shape[:2]
    kernels = g.reshape(m * conv.out_channels, 1, *g.shape[2:])
    per_sample = F.conv2d(a.transpose(0, 1), kernels, stride=conv.dilation, padding=conv.padding,
                          groups=m)  # (c_in, m*out, kh, kw)
    return per_sample.reshape(c_in, m, -1).transpose(0, 1).reshape(m, -1)


_SHAPES: dict[tuple, torch.Tensor] = {}


def _shape_tensor(like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A cached uninitialised tensor of ``shape``: convolution_backward reads only its shape."""
    key = (shape, like.dtype, like.device)
    if key not in _SHAPES:
        if len(_SHAPES) > 64:
            _SHAPES.clear()
        _SHAPES[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return _SHAPES[key]
