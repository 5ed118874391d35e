"""Rules for ``nn.Conv1d/2d/3d`` (zero padding given as numbers; any stride, dilation, groups).

The per-sample weight gradients are materialised a few samples at a time and reduced in float32
passes, so memory stays bounded whatever the batch, by one of three exact formulations, the fastest
measured on this machine for the layer's shapes (:mod:`.formulations`; a pinned process takes the fixed
choice of :func:`fixed_formulation`):

- grouped formulation (:func:`grouped_conv_weight_grads`), any convolution: the m samples become the
  groups of one grouped convolution whose weight gradient, computed by the backend's convolution
  kernels, is exactly the stack of per-sample gradients (the fastest with oneDNN on, except for
  inputs of one channel);
- swapped formulation (:func:`swapped_conv_weight_grads`), for Conv2d with groups=1 and stride 1: the
  padded input convolved with each sample's output gradient as the kernel (the fastest with oneDNN on
  for a first layer of one input channel);
- unfolded formulation (:func:`unfolded_conv_weight_grads`), for Conv2d with groups=1: the input's
  patches (im2col) times each sample's output gradient, one batched matrix product (the fastest with
  oneDNN off, as in a pinned process).

The bias gradient of sample k is its output gradient summed over positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs, moments_of
from gradmeta.uncertainty.gradients.rules.blocks import block_length, blockwise_moments
from gradmeta.uncertainty.gradients.rules.formulations import Formulation, choose
from gradmeta.uncertainty.gradients.rules.registry import register_rule

PATCH_BYTES = 8 << 20  # im2col patches materialised at once by the unfolded formulation


def _covered(conv: nn.Conv2d) -> bool:
    return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


@register_rule(nn.Conv2d, applies=_covered, name="conv2d", channels_last=True)
def conv2d_moments(module: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a Conv2d layer."""
    out = {"weight": conv2d_weight_moments(module, a, g, needs)}
    if module.bias is not None:
        out["bias"] = moments_of(g.sum(dim=(2, 3)), needs)
    return out


@register_rule(nn.Conv1d, nn.Conv3d, applies=_covered, name="conv")
def conv_nd_moments(module: nn.Conv1d | nn.Conv3d, a: torch.Tensor, g: torch.Tensor,
                    needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample ``weight`` and ``bias`` gradients of a Conv1d or Conv3d layer."""
    out = {"weight": conv2d_weight_moments(module, a, g, needs)}
    if module.bias is not None:
        out["bias"] = moments_of(g.sum(dim=tuple(range(2, g.dim()))), needs)
    return out


def swapped_applies(conv: nn.Module) -> bool:
    """The swapped formulation: a Conv2d with groups=1 and stride 1."""
    return isinstance(conv, nn.Conv2d) and conv.groups == 1 and all(s == 1 for s in conv.stride)


def conv2d_weight_moments(conv: nn.Module, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> Moments:
    """Per-sample weight-gradient moments of a convolution from its input a and output gradient g,
    materialised in blocks (:func:`blockwise_moments`) by the formulation chosen for the layer
    (:func:`formulation_for`)."""
    per_sample_gradients = formulation_for(conv, a, g).compute
    return blockwise_moments(a.shape[0], conv.weight.numel(), a,
                             lambda i, j: per_sample_gradients(conv, a[i:j], g[i:j]), needs)


def grouped_conv_weight_grads(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients (m, weight.numel()) in the weight's entry order.

    a (m, in, H, W) is the layer input, g (m, out, H', W') its output gradient. The m samples are
    the groups of one grouped convolution; its weight gradient is their stack.
    """
    m = a.shape[0]
    shape_only = _shape_tensor(conv.weight, (m * conv.out_channels, *conv.weight.shape[1:]))
    per_sample = torch.ops.aten.convolution_backward(
        g.reshape(1, m * g.shape[1], *g.shape[2:]), a.reshape(1, m * a.shape[1], *a.shape[2:]),
        shape_only, None, conv.stride, conv.padding, conv.dilation, False, (0,) * len(conv.stride), m * conv.groups,
        (False, True, False))[1]
    return per_sample.reshape(m, -1)


def unfolded_conv_weight_grads(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients (m, weight.numel()) of a groups=1 Conv2d in the weight's entry order:
    the input's patches (im2col, ``F.unfold``: (m, in*kh*kw, L)) times each sample's output gradient
    (m, out, L) in one batched matrix product, for at most ``PATCH_BYTES`` of patches at a time."""
    m = a.shape[0]
    per_sample = g.shape[2] * g.shape[3] * conv.weight[0].numel() * a.element_size()
    step = max(1, PATCH_BYTES // per_sample)
    if step >= m:
        return _unfolded(conv, a, g)
    out = a.new_empty(m, conv.weight.numel())
    for i in range(0, m, step):
        out[i: i + step] = _unfolded(conv, a[i: i + step], g[i: i + step])
    return out


def _unfolded(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    m = a.shape[0]
    patches = F.unfold(a, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    if g.dim() == 4 and g.is_contiguous(memory_format=torch.channels_last):  # (m, L, out) as it lies: no copy
        per_position = g.permute(0, 2, 3, 1).reshape(m, -1, conv.out_channels).transpose(1, 2)
    else:
        per_position = g.reshape(m, conv.out_channels, -1)
    return torch.bmm(per_position, patches.transpose(1, 2)).reshape(m, -1)


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


GROUPED = Formulation("grouped", grouped_conv_weight_grads, lambda conv: True)
SWAPPED = Formulation("swapped", swapped_conv_weight_grads, swapped_applies)
UNFOLDED = Formulation("unfolded", unfolded_conv_weight_grads,
                       lambda conv: isinstance(conv, nn.Conv2d) and conv.groups == 1)
FORMULATIONS = {f.name: f for f in (GROUPED, SWAPPED, UNFOLDED)}


def fixed_formulation(conv: nn.Module) -> Formulation:
    """The choice of a pinned process: unfolded where it applies (Conv2d, groups=1), else grouped.

    Pinned, convolutions run as ATen's im2col + BLAS (oneDNN off); the grouped formulation then loops over
    the samples as groups, while the unfolded one makes one im2col and one batched product: measured
    0.73-1.35x of the summed weight gradient's time against 0.45-0.79x grouped and 0.32-0.70x swapped on
    every Conv2d of ``benchmarks/architectures.py`` (``python benchmarks/conv_formulations.py``, pinned). The
    code path is the same on every x86-64-v3 CPU, so the choice is too.
    """
    return UNFOLDED if UNFOLDED.applies(conv) else GROUPED


def formulation_for(conv: nn.Module, a: torch.Tensor, g: torch.Tensor) -> Formulation:
    """The formulation for this layer on this chunk (input a, output gradient g), measured on one block the
    first time a layer of its configuration and shapes is met (:func:`.formulations.choose`)."""
    m = block_length(a.shape[0], conv.weight.numel(), a.element_size())
    key = ("conv", type(conv).__name__, tuple(conv.weight.shape), conv.stride, conv.padding, conv.dilation,
           conv.groups)
    return choose(FORMULATIONS.values(), fixed_formulation(conv), conv, key, a[:m], g[:m])


_SHAPES: dict[tuple, torch.Tensor] = {}


def _shape_tensor(like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A cached uninitialised tensor of ``shape``: convolution_backward reads only its shape."""
    key = (shape, like.dtype, like.device)
    if key not in _SHAPES:
        if len(_SHAPES) > 64:
            _SHAPES.clear()
        _SHAPES[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return _SHAPES[key]
