"""Exact per-sample gradient statistics for whole batches, with no Python loop over samples.

For each image x with label y (by default the network's own prediction argmax f(x)), the loss is
the cross-entropy CE(f(x), y). For every parameter tensor theta_k the per-sample gradient
g_k = dCE/dtheta_k is reduced over its entries to statistics: ``l1`` (sum |g|), ``l2`` (sqrt of
sum g^2), ``max``, ``min`` (signed), ``mean``, ``std`` (population), and optionally ``skew`` and
``kurt`` (excess). ``grad/all/<stat>`` is the same over all parameters together.

How (the model runs in eval mode, where samples do not interact):
- one batched forward and one batched backward of the summed losses give every layer's per-sample
  *output* gradient; weight gradients are never summed over the batch;
- ``nn.Linear`` (2-D input): the per-sample weight gradient is the outer product g (x) a and is
  never materialised: power sums factorise (sum (g_i a_j)^p = sum g_i^p * sum a_j^p), so does the
  l1 sum, and max/min are among the four products of the extremes of g and a;
- ``nn.Conv2d`` (zero padding, any stride, dilation, groups): per-sample gradients are
  materialised a few images at a time, as the weight gradient of one grouped convolution whose
  groups are the images (the backend's convolution kernels do the work), and reduced; stride-1
  layers with few input channels (a first layer) swap roles instead: the padded input convolved
  with each image's output gradient as the kernel;
- any other parameter (BatchNorm, a custom module, a layer called twice): an exact generic path,
  ``torch.func.vmap`` of ``grad`` over the chunk;
- on the CPU, a model with convolutions runs on channels-last inputs and its convolutions pass their
  outputs on in channels-last layout (same values; the CPU kernels of convolution, pooling and ReLU
  are several times faster), unless its forward fails or gives other logits in that layout (checked
  on one image). The model itself is not changed.

Degenerate cases: std of a tensor with one entry is 0; skew and kurt are 0 where the gradient is
constant (zero variance, e.g. an all-zero gradient of a saturated prediction). Every value is finite.
The mean of the logits layer's weight and bias gradients is exactly 0 (p - onehot(y) sums to 0).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.errors import GradmetaError

PAPER_STATISTICS = ("l1", "l2", "max", "min", "mean", "std")
OPTIONAL_STATISTICS = ("skew", "kurt")
ALL_STATISTICS = PAPER_STATISTICS + OPTIONAL_STATISTICS
DEFAULT_CHUNK_SIZE = 64
CONV_BLOCK_BYTES = 13 << 18  # per-sample gradients materialised at once: a few MB stay in cache
SWAPPED_MAX_IN_CHANNELS = 4  # stride-1 convs with this few inputs: the swapped formulation is faster


# ------------------------------------------------------------------------------------- moments
@dataclass(frozen=True)
class Needs:
    """Which per-sample quantities the requested statistics need (the rest is never computed)."""

    l1: bool
    sumsq: bool
    extremes: bool
    mean: bool
    higher: bool

    @classmethod
    def of(cls, statistics: Sequence[str]) -> Needs:
        s = set(statistics)
        higher = bool(s & set(OPTIONAL_STATISTICS))
        return cls(l1="l1" in s, sumsq=bool(s & {"l2", "std"}) or higher,
                   extremes=bool(s & {"max", "min"}) or higher, mean=bool(s & {"mean", "std"}) or higher,
                   higher=higher)


@dataclass
class Moments:
    """Per-sample summary of one gradient tensor (or of several together), each field (n,) or None.

    ``mean``, ``m2``, ``m3``, ``m4`` are float64 central moments (m2 is the population variance);
    a field is None when no requested statistic needs it.
    """

    count: int
    l1: torch.Tensor | None = None
    sumsq: torch.Tensor | None = None
    max: torch.Tensor | None = None
    min: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    m3: torch.Tensor | None = None
    m4: torch.Tensor | None = None

    def statistics(self, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """The requested statistics (float64, (n,)), with the degenerate-case conventions above."""
        out: dict[str, torch.Tensor] = {}
        for name in names:
            if name == "l1":
                out[name] = self.l1.double()
            elif name == "l2":
                out[name] = self.sumsq.double().clamp_min(0.0).sqrt()
            elif name == "max":
                out[name] = self.max.double()
            elif name == "min":
                out[name] = self.min.double()
            elif name == "mean":
                out[name] = self.mean
            elif name == "std":
                out[name] = self.m2.clamp_min(0.0).sqrt()
            elif name in ("skew", "kurt"):
                var = self.m2.clamp_min(0.0)
                scale = torch.maximum(self.max.abs(), self.min.abs()).double()
                flat = var <= (1e-12 * scale) ** 2  # constant tensor (up to rounding): no shape to measure
                safe = torch.where(flat, torch.ones_like(var), var)
                value = self.m3 / safe.pow(1.5) if name == "skew" else self.m4 / safe.pow(2) - 3.0
                out[name] = torch.where(flat, 0.0, value)
        return out


_RAW_ROWS = ("l2", "max", "min", "sum", "l1")  # per-sample float32 reductions of materialised values


def raw_sums_into(values: torch.Tensor, needs: Needs, out: torch.Tensor, scratch: bool = False) -> None:
    """The float32 per-sample reductions of ``values`` (m, K) that ``needs`` asks for, written into
    the rows of ``out`` (len(_RAW_ROWS), m) (pairwise sums, exact to ~1e-7 relative).

    ``scratch=True`` lets the last pass overwrite ``values`` (a temporary the caller owns).
    """
    if needs.sumsq:
        torch.linalg.vector_norm(values, 2, dim=1, out=out[0])
    if needs.extremes:
        torch.amax(values, 1, out=out[1])
        torch.amin(values, 1, out=out[2])
    if needs.mean:
        torch.sum(values, 1, out=out[3])
    if needs.l1:  # abs + sum: several times faster than vector_norm(ord=1) on the CPU
        torch.sum(values.abs_() if scratch else values.abs(), 1, out=out[4])


def moments_from_raw(raw: torch.Tensor, count: int, needs: Needs) -> Moments:
    """Moments (no skew/kurt) from the rows written by ``raw_sums_into``; derived fields in float64."""
    m = Moments(count)
    if needs.sumsq:
        l2 = raw[0].double()
        m.sumsq = l2 * l2
    if needs.extremes:
        m.max, m.min = raw[1], raw[2]
    if needs.mean:
        m.mean = raw[3].double() / count
        if needs.sumsq:
            m.m2 = (m.sumsq / count - m.mean * m.mean).clamp_min(0.0)
    if needs.l1:
        m.l1 = raw[4].double()
    return m


def moments_of(values: torch.Tensor, needs: Needs, scratch: bool = False) -> Moments:
    """Moments of materialised per-sample values (n, K), one pass per needed quantity.

    Sums run in float32 and derived quantities in float64; for skew/kurt the central moments are
    accumulated in float64. ``scratch`` as in ``raw_sums_into``.
    """
    n, k = values.shape
    raw = values.new_empty(len(_RAW_ROWS), n)
    raw_sums_into(values, needs, raw, scratch=scratch and not needs.higher)
    m = moments_from_raw(raw, k, needs)
    if needs.higher:
        d = values.double() - m.mean[:, None]
        d2 = d * d
        m.m2, m.m3, m.m4 = d2.mean(1), (d2 * d).mean(1), (d2 * d2).mean(1)
    return m


def moments_of_outer(g: torch.Tensor, a: torch.Tensor, needs: Needs) -> Moments:
    """Moments of the per-sample outer products g[n] (x) a[n] (entries g_i a_j), never materialised.

    g (n, out), a (n, in). Raw power sums factorise; max/min are among the products of extremes.
    Factor sums run in float32 and their products in float64; the third and fourth power sums
    (skew, kurt) are accumulated in float64.
    """
    count = g.shape[1] * a.shape[1]
    m = Moments(count)
    if needs.l1:
        m.l1 = g.abs().sum(1).double() * a.abs().sum(1).double()
    if needs.extremes:
        gmax, gmin, amax, amin = g.amax(1), g.amin(1), a.amax(1), a.amin(1)
        corners = torch.stack([gmax * amax, gmax * amin, gmin * amax, gmin * amin], dim=1)
        m.max, m.min = corners.amax(1), corners.amin(1)
    if needs.sumsq or needs.mean:
        g2 = torch.linalg.vector_norm(g, 2, dim=1).double() ** 2
        a2 = torch.linalg.vector_norm(a, 2, dim=1).double() ** 2
        s2 = g2 * a2
        if needs.sumsq:
            m.sumsq = s2
        if needs.mean:
            mean = g.sum(1).double() * a.sum(1).double() / count
            e2 = s2 / count
            m.mean = mean
            if needs.sumsq:
                m.m2 = (e2 - mean * mean).clamp_min(0.0)
            if needs.higher:
                gd, ad = g.double(), a.double()
                gd2, ad2 = gd * gd, ad * ad
                e3 = (gd2 * gd).sum(1) * (ad2 * ad).sum(1) / count
                e4 = (gd2 * gd2).sum(1) * (ad2 * ad2).sum(1) / count
                m.m3 = e3 - 3 * mean * e2 + 2 * mean**3
                m.m4 = e4 - 4 * mean * e3 + 6 * mean**2 * e2 - 3 * mean**4
    return m


_FIELDS = ("l1", "sumsq", "max", "min", "mean", "m2", "m3", "m4")


def stack(parts: Sequence[Moments]) -> Moments:
    """Several tensors' moments as one Moments whose fields are (len(parts), n): statistics and
    ``combine`` then run once for all of them instead of once per tensor."""
    fields = {f: None if getattr(parts[0], f) is None else torch.stack([getattr(p, f) for p in parts])
              for f in _FIELDS}
    return Moments(sum(p.count for p in parts), **fields)


def combine(stacked: Moments, counts: Sequence[int]) -> Moments:
    """Moments of the concatenation of several tensors, from their ``stack`` and entry counts
    (pairwise-stable central moments)."""
    s = stacked
    out = Moments(int(sum(counts)))
    if s.l1 is not None:
        out.l1 = s.l1.sum(0)
    if s.sumsq is not None:
        out.sumsq = s.sumsq.sum(0)
    if s.max is not None:
        out.max, out.min = s.max.amax(0), s.min.amin(0)
    if s.mean is not None:
        weight = torch.tensor(counts, dtype=torch.float64, device=s.mean.device)[:, None] / out.count
        mean = (weight * s.mean).sum(0)
        out.mean = mean
        if s.m2 is not None:
            dev = s.mean - mean
            dev2 = dev * dev
            out.m2 = (weight * (s.m2 + dev2)).sum(0)
            if s.m3 is not None:
                out.m3 = (weight * (s.m3 + 3 * dev * s.m2 + dev2 * dev)).sum(0)
                out.m4 = (weight * (s.m4 + 4 * dev * s.m3 + 6 * dev2 * s.m2 + dev2 * dev2)).sum(0)
    return out


# -------------------------------------------------------------------------------- layer plans
@dataclass
class _Layer:
    name: str          # module name ('' for the root)
    module: nn.Module
    kind: str          # 'linear' | 'conv2d' | 'generic'
    params: list[tuple[str, nn.Parameter]]  # (full parameter name, parameter)
    copy_output: bool = False  # set when an in-place op downstream modifies the output
    channels_last: bool = False  # pass the (4-D) output on in channels-last layout


def _fast_kind(module: nn.Module) -> str:
    if type(module) is nn.Linear:
        return "linear"
    if type(module) is nn.Conv2d and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        return "conv2d"
    return "generic"


def plan_layers(model: nn.Module, probe: torch.Tensor) -> list[_Layer]:
    """Every module that owns parameters, in registration order, with the path that computes it.

    ``probe`` (one input sample batch) is run once to route modules that are called more or less
    than once per forward to the generic path; so are modules sharing a parameter with another.
    Its logits then decide the layout (see ``_choose_channels_last``).
    """
    owners: dict[int, int] = {}
    for module in model.modules():
        for t in module.parameters(recurse=False):
            owners[id(t)] = owners.get(id(t), 0) + 1
    layers, seen = [], set()
    for name, module in model.named_modules():
        all_own = list(module.named_parameters(recurse=False))
        own = [(f"{name}.{p}" if name else p, t) for p, t in all_own if id(t) not in seen]
        seen.update(id(t) for _, t in own)
        shared = any(owners[id(t)] > 1 for _, t in all_own)
        if own:
            layers.append(_Layer(name, module, "generic" if shared else _fast_kind(module), own))
    calls: dict[int, int] = {}
    handles = [layer.module.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls.get(id(m), 0) + 1))
               for layer in layers if layer.kind != "generic"]
    try:
        with torch.no_grad():
            standard = model(probe)
    finally:
        for h in handles:
            h.remove()
    for layer in layers:
        if layer.kind != "generic" and calls.get(id(layer.module), 0) != 1:
            layer.kind = "generic"
    _choose_channels_last(model, layers, probe, standard)
    return layers


def _choose_channels_last(model: nn.Module, layers: list[_Layer], probe: torch.Tensor,
                          standard: torch.Tensor) -> None:
    """Set ``channels_last`` on the fast-path convolutions where the model should run on
    channels-last inputs with those convolutions passing their outputs on in that layout.
    ``standard``: the model's logits of ``probe`` in the standard layout.

    Layout does not change values, only speed: on the CPU the kernels of convolution, max-pooling
    and ReLU are several times faster on channels-last tensors (a 1-channel first convolution ~10x,
    max-pooling ~14x). Chosen on the CPU for models with a fast-path convolution whose forward
    accepts the layout: a model that needs the standard one (``x.view(n, -1)`` after a convolution
    raises) or computes other values in it (a custom kernel that assumes the standard layout)
    keeps it; both are checked on the probe.
    """
    convs = [layer for layer in layers if layer.kind == "conv2d"]
    if probe.device.type != "cpu" or probe.dim() != 4 or not convs:
        return
    handles = [layer.module.register_forward_hook(lambda m, i, o: _to_channels_last(o)) for layer in convs]
    try:
        with torch.no_grad():
            relaid = model(_to_channels_last(probe))
    except RuntimeError:
        return
    finally:
        for h in handles:
            h.remove()
    scale = float(standard.abs().max()) if standard.numel() else 0.0
    if relaid.shape != standard.shape or not torch.allclose(relaid, standard, rtol=1e-4, atol=1e-4 * scale):
        return
    for layer in convs:
        layer.channels_last = True


def _to_channels_last(t: torch.Tensor, copy: bool = False) -> torch.Tensor:
    """A 4-D ``t`` with channels-last strides (itself if it has them and not ``copy``); other
    tensors as they are (or cloned when ``copy``). One-channel tensors get strides (HW, 1, W, 1)."""
    if t.dim() != 4:
        return t.clone() if copy else t
    if not copy and t.is_contiguous(memory_format=torch.channels_last) and t.stride(1) == 1:
        return t
    return t.clone(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------- per-layer math
def _conv2d_weight_moments(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> Moments:
    """Per-sample weight-gradient moments of a Conv2d from its input a and output gradient g.

    A few samples at a time become the groups of one grouped convolution, whose weight gradient
    (computed by the backend's convolution kernels) is exactly the stack of per-sample gradients.
    Stride-1 convolutions with few input channels use the swapped formulation instead.
    """
    swapped = (conv.groups == 1 and conv.in_channels <= SWAPPED_MAX_IN_CHANNELS
               and all(s == 1 for s in conv.stride))
    per_sample_gradients = _swapped_conv_weight_grads if swapped else _grouped_conv_weight_grads
    n = a.shape[0]
    most = max(1, CONV_BLOCK_BYTES // (conv.weight.numel() * conv.weight.element_size()))
    block = -(-n // -(-n // most))  # equal blocks of at most `most` samples
    starts = range(0, n, block)
    if needs.higher:  # central moments need each block's values: reduce block by block
        return _concat_samples([moments_of(per_sample_gradients(conv, a[i: i + block], g[i: i + block]), needs,
                                           scratch=True) for i in starts])
    raw = a.new_empty(len(_RAW_ROWS), n)
    for i in starts:
        raw_sums_into(per_sample_gradients(conv, a[i: i + block], g[i: i + block]), needs, raw[:, i: i + block],
                      scratch=True)
    return moments_from_raw(raw, conv.weight.numel(), needs)


def _grouped_conv_weight_grads(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients (m, weight.numel()) in the weight's entry order.

    The m samples are the groups of one grouped convolution; its weight gradient is their stack.
    """
    m = a.shape[0]
    shape_only = _shape_tensor(conv.weight, (m * conv.out_channels, *conv.weight.shape[1:]))
    per_sample = torch.ops.aten.convolution_backward(
        g.reshape(1, m * g.shape[1], *g.shape[2:]), a.reshape(1, m * a.shape[1], *a.shape[2:]),
        shape_only, None, conv.stride, conv.padding, conv.dilation, False, (0, 0), m * conv.groups,
        (False, True, False))[1]
    return per_sample.reshape(m, -1)


def _swapped_conv_weight_grads(conv: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
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


def _concat_samples(parts: Sequence[Moments]) -> Moments:
    """Join moments computed on consecutive sample slices (same tensor, different samples)."""
    if len(parts) == 1:
        return parts[0]
    joined = {f: None if getattr(parts[0], f) is None else torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS}
    return Moments(parts[0].count, **joined)


def _fast_layer_moments(layer: _Layer, a: torch.Tensor, g: torch.Tensor, needs: Needs) -> dict[str, Moments]:
    out: dict[str, Moments] = {}
    module = layer.module
    for full, _ in layer.params:
        leaf = full.rsplit(".", 1)[-1]
        if layer.kind == "linear":
            g2 = g.reshape(g.shape[0], -1, g.shape[-1])
            a2 = a.reshape(a.shape[0], -1, a.shape[-1])
            if leaf == "weight":
                if g2.shape[1] == 1:
                    out[full] = moments_of_outer(g2[:, 0], a2[:, 0], needs)
                else:  # extra dimensions: sum of outer products over positions, materialised
                    out[full] = moments_of(torch.bmm(g2.transpose(1, 2), a2).flatten(1), needs)
            else:
                out[full] = moments_of(g2.sum(1), needs)
        else:  # conv2d
            if leaf == "weight":
                out[full] = _conv2d_weight_moments(module, a, g, needs)
            else:
                out[full] = moments_of(g.sum(dim=(2, 3)), needs)
    return out


def _generic_moments(model: nn.Module, names: list[str], x: torch.Tensor, y: torch.Tensor,
                     needs: Needs) -> dict[str, Moments]:
    """Exact per-sample gradients of the named parameters via torch.func (vmap of grad)."""
    from torch.func import functional_call, grad, vmap

    params = dict(model.named_parameters())
    chosen = {k: params[k].detach() for k in names}

    def loss_one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, p, (xi.unsqueeze(0),), strict=False)
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))(chosen, x, y)
    return {k: moments_of(v.detach().reshape(v.shape[0], -1), needs) for k, v in per_sample.items()}


# ------------------------------------------------------------------------------------- engine
@contextlib.contextmanager
def _eval_with_grads(model: nn.Module) -> Iterator[None]:
    """Eval mode and requires_grad on every parameter for the duration; both restored afterwards."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@dataclass
class ChunkResult:
    """What one chunk yields: logits, labels used, per-parameter moments, GradNorm (or None)."""

    logits: torch.Tensor
    labels: torch.Tensor
    moments: dict[str, Moments]
    gradnorm: torch.Tensor | None


def process_chunk(model: nn.Module, layers: list[_Layer], x: torch.Tensor, labels: torch.Tensor | None,
                  needs: Needs, with_gradnorm: bool = False) -> ChunkResult:
    """One batched forward + backward of a chunk; exact per-sample moments of every parameter."""
    fast = [layer for layer in layers if layer.kind != "generic"]
    captured: dict[int, tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]] = {}

    def make_hook(layer: _Layer) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            # With copy_output the rest of the model gets a copy, so an in-place op downstream
            # (e.g. ReLU(inplace=True)) cannot change the tensor whose gradient we ask for.
            if layer.channels_last:
                passed_on = _to_channels_last(output, copy=layer.copy_output)
            else:
                passed_on = output.clone() if layer.copy_output else output
            captured[id(module)] = (inputs[0].detach(), output, output._version, passed_on)
            return passed_on if passed_on is not output else None
        return hook

    handles = [layer.module.register_forward_hook(make_hook(layer)) for layer in fast]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    modified = [layer for layer in fast if captured[id(layer.module)][1]._version != captured[id(layer.module)][2]]
    if modified:  # found an in-place op after a layer: copy that layer's output from now on, redo
        for layer in modified:
            layer.copy_output = True
        return process_chunk(model, layers, x, labels, needs, with_gradnorm)
    y = logits.detach().argmax(1) if labels is None else labels
    outputs = [captured[id(layer.module)][1] for layer in fast]
    moments: dict[str, Moments] = {}
    if outputs:
        loss = F.cross_entropy(logits, y, reduction="sum")
        grads = torch.autograd.grad(loss, outputs, allow_unused=True)
        for layer, g in zip(fast, grads):
            a, out = captured[id(layer.module)][:2]
            if g is None:
                g = torch.zeros_like(out)
            moments.update(_fast_layer_moments(layer, a, g.detach(), needs))
    last = next((layer for layer in fast if layer.kind == "linear" and captured[id(layer.module)][3] is logits), None)
    if last is not None and needs.mean:
        # The logits layer's output gradient p - onehot(y) sums to 0, so the means of its weight
        # gradient (sum g_i * sum a_j / count) and bias gradient are exactly 0, not rounding noise.
        for name, _ in last.params:
            moments[name].mean = torch.zeros_like(moments[name].mean)
    generic = [name for layer in layers if layer.kind == "generic" for name, _ in layer.params]
    if generic:
        moments.update(_generic_moments(model, generic, x, y, needs))

    gradnorm = None
    if with_gradnorm:
        if last is None:
            raise GradmetaError("GradNorm needs a model whose logits come straight out of an nn.Linear layer")
        a = captured[id(last.module)][0].reshape(len(x), -1)
        p = torch.softmax(logits.detach(), dim=1)
        # CE against the uniform distribution: dL/dlogits = p - 1/C; weight gradient (p - u) (x) a.
        gradnorm = (p - 1.0 / p.shape[1]).abs().sum(1, dtype=torch.float64) * a.abs().sum(1, dtype=torch.float64)
    ordered = {name: moments[name] for layer in layers for name, _ in layer.params}
    return ChunkResult(logits.detach(), y, ordered, gradnorm)


def validate_statistics(statistics: Sequence[str]) -> tuple[str, ...]:
    """Check statistic names (a GradmetaError names the bad one); returns them as a tuple."""
    stats = tuple(statistics)
    if not stats:
        raise GradmetaError(f"statistics must name at least one of {', '.join(ALL_STATISTICS)}")
    for s in stats:
        if s not in ALL_STATISTICS:
            raise GradmetaError(f"unknown gradient statistic {s!r}, expected one of {', '.join(ALL_STATISTICS)}")
    if len(set(stats)) != len(stats):
        raise GradmetaError(f"statistics are listed twice: {list(stats)}")
    return stats


def chunk_table(result: ChunkResult, statistics: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """Feature names ``grad/<param>/<stat>`` then ``grad/all/<stat>``, and their values (F, n)
    float64 on the CPU, of one processed chunk; computed for all parameters at once."""
    parts = list(result.moments.values())
    stacked = stack(parts)
    per_param = stacked.statistics(statistics)  # stat -> (P, n)
    overall = combine(stacked, [p.count for p in parts]).statistics(statistics)  # stat -> (n,)
    values = torch.cat([torch.stack([per_param[st] for st in statistics], 1).flatten(0, 1),
                        torch.stack([overall[st] for st in statistics])])
    names = [f"grad/{name}/{st}" for name in result.moments for st in statistics]
    return names + [f"grad/all/{st}" for st in statistics], values.cpu()


def chunk_features(result: ChunkResult, statistics: Sequence[str]) -> dict[str, torch.Tensor]:
    """``chunk_table`` as a dict of (n,) float64 CPU tensors, in the same order."""
    names, values = chunk_table(result, statistics)
    return dict(zip(names, values.unbind(0)))


def _checked_arguments(statistics: Sequence[str], chunk_size: int, labels: torch.Tensor | str,
                       n: int) -> tuple[tuple[str, ...], torch.Tensor | None]:
    """Validated statistics, and the labels: None for ``"predicted"``, else a LongTensor (n,).
    Bad values raise a GradmetaError naming them."""
    stats = validate_statistics(statistics)
    if chunk_size < 1:
        raise GradmetaError(f"chunk_size must be a positive integer, got {chunk_size}")
    if isinstance(labels, str):
        if labels != "predicted":
            raise GradmetaError(f"label must be 'predicted' or a tensor of class indices, got {labels!r}")
        return stats, None
    label_tensor = torch.as_tensor(labels, dtype=torch.long)
    if label_tensor.shape != (n,):
        raise GradmetaError(f"labels must have shape ({n},), got {tuple(label_tensor.shape)}")
    return stats, label_tensor


def _chunk_results(model: nn.Module, images: torch.Tensor, stats: tuple[str, ...], labels: torch.Tensor | None,
                   chunk_size: int, with_gradnorm: bool) -> Iterator[ChunkResult]:
    """``process_chunk`` over consecutive chunks of ``images`` (arguments already validated)."""
    if len(images) == 0:
        return
    needs = Needs.of(stats)
    device = next(model.parameters()).device
    with _eval_with_grads(model):
        layers = plan_layers(model, images[:1].to(device))
        channels_last = any(layer.channels_last for layer in layers)  # then the inputs are too
        for start in range(0, len(images), chunk_size):
            x = images[start: start + chunk_size].to(device)
            if channels_last:
                x = _to_channels_last(x)
            y = None if labels is None else labels[start: start + chunk_size].to(device)
            yield process_chunk(model, layers, x, y, needs, with_gradnorm)


def iterate_chunks(model: nn.Module, images: torch.Tensor, statistics: Sequence[str] = PAPER_STATISTICS,
                   labels: torch.Tensor | str = "predicted", chunk_size: int = DEFAULT_CHUNK_SIZE,
                   with_gradnorm: bool = False,
                   on_chunk: Callable[[int], None] | None = None) -> Iterator[tuple[ChunkResult, dict[str, torch.Tensor]]]:
    """Process ``images`` chunk by chunk; yields (ChunkResult, chunk features). Validates arguments."""
    stats, label_tensor = _checked_arguments(statistics, chunk_size, labels, len(images))
    for result in _chunk_results(model, images, stats, label_tensor, chunk_size, with_gradnorm):
        yield result, chunk_features(result, stats)
        if on_chunk is not None:
            on_chunk(len(result.labels))


def gradient_statistics(model: nn.Module, images: torch.Tensor, statistics: Sequence[str] = PAPER_STATISTICS,
                        label: torch.Tensor | str = "predicted",
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, torch.Tensor]:
    """Exact per-sample gradient statistics of the cross-entropy for a batch of images.

    ``images`` (N, ...) as the model takes them; ``label`` is ``"predicted"`` (the paper's choice,
    argmax of the model's own logits) or a LongTensor (N,) of classes. Returns float32 tensors (N,)
    on the CPU keyed ``grad/<parameter name>/<statistic>`` for every parameter tensor, in the
    model's parameter order, then ``grad/all/<statistic>`` (rows of one (F, N) tensor). The model
    is run in eval mode on its own device; its mode and requires_grad flags are restored afterwards.
    """
    stats, label_tensor = _checked_arguments(statistics, chunk_size, label, len(images))
    names: list[str] = []
    table = torch.empty(0)
    start = 0
    for result in _chunk_results(model, images, stats, label_tensor, chunk_size, with_gradnorm=False):
        names, values = chunk_table(result, stats)
        if start == 0:  # allocated once: per-chunk results never pile up between large temporaries
            table = torch.empty(len(names), len(images), dtype=torch.float32)
        table[:, start: start + values.shape[1]] = values
        start += values.shape[1]
    return dict(zip(names, table.unbind(0)))
