"""The chunk engine: exact per-sample gradient statistics for whole batches, no Python loop over samples.

For each image x with label y (by default the network's own prediction argmax f(x)), the loss is
the cross-entropy CE(f(x), y). For every parameter tensor theta_k the per-sample gradient
g_k = dCE/dtheta_k is reduced over its entries to statistics (:mod:`.moments`); ``grad/all/<stat>``
is the same over all parameters together.

How (the model runs in eval mode, where samples do not interact):
- :func:`.plan.plan_layers` decides once per call which rule computes each parameter;
- per chunk, one batched forward and one batched backward of the summed losses give every ruled
  layer's per-sample *output* gradient (weight gradients are never summed over the batch); each
  layer's rule (:mod:`.rules`) turns its input and output gradient into moments;
- parameters without a rule go through the generic exact path (:mod:`.generic`).

The mean of the logits layer's weight and bias gradients is exactly 0 (p - onehot(y) sums to 0)
and is returned as 0, not as float rounding noise.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from numbers import Integral

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.gradients.broadcast import forward_with_copies, per_sample_copies
from gradmeta.uncertainty.gradients.calls import (
    detached_call,
    first_tensor,
    modified,
    output_tensors,
    versions,
    with_outputs,
)
from gradmeta.uncertainty.gradients.generic import generic_moments
from gradmeta.uncertainty.gradients.layout import to_channels_last
from gradmeta.uncertainty.gradients.moments import (
    PAPER_STATISTICS,
    Moments,
    Needs,
    combine,
    moments_of,
    stack,
    validate_statistics,
)
from gradmeta.uncertainty.gradients.plan import Layer, Plan, plan_layers
from gradmeta.uncertainty.gradients.rules.registry import Call
from gradmeta.uncertainty.gradients.targets import Target, target_named
from gradmeta.uncertainty.model_calls.finite import first_non_finite_row
from gradmeta.uncertainty.model_calls.model_io import check_input_dtype
from gradmeta.uncertainty.model_calls.model_state import untouched

DEFAULT_CHUNK_SIZE = 64
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _eval_with_grads(model: nn.Module) -> Iterator[None]:
    """Eval mode and requires_grad on every parameter for the duration; every module's mode, the
    parameters' flags and the random streams restored afterwards (:func:`untouched`)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    with untouched(model):
        try:
            for p, _ in flags:
                p.requires_grad_(True)
            with torch.enable_grad():
                yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)


@dataclass
class ChunkResult:
    """What one chunk yields: logits (n, C), the labels used (n,), per-parameter moments in the
    model's parameter order, the penultimate features (n, D) (the input of the model's head, the
    ``nn.Linear`` whose output is the logits, flattened; None where the model has no such head) and
    the factors (n,) float64 of every ruled layer's per-sample gradient (:func:`layer_factors`; empty
    unless asked for). Logits and features are detached, on the model's device, in its dtype."""

    logits: torch.Tensor
    labels: torch.Tensor
    moments: dict[str, Moments]
    features: torch.Tensor | None
    factors: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class _Captured:
    """One ruled layer's call in the chunk's forward pass."""

    layer_input: torch.Tensor | Call  # detached: the first input tensor, or the whole call for a whole-call rule
    outputs: tuple[torch.Tensor | None, ...]  # the tensors whose gradients are taken
    versions: list[int | None]  # their version counters right after the call
    passed_on: object  # what the rest of the model received


def _forward_capturing(model: nn.Module, plan: Plan, x: torch.Tensor,
                       copies: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[int, _Captured], torch.Tensor | None]:
    """The batched forward of ``x`` (with the per-sample ``copies`` of the broadcast parameters in their
    place) with every ruled layer's input and output captured, and the head's input (the penultimate
    features, flattened to (n, D), detached; None without a head)."""
    captured: dict[int, _Captured] = {}
    head_input: list[torch.Tensor] = []

    def make_hook(layer: Layer) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: object) -> object | None:
            outputs = output_tensors(output)
            # With copy_output the rest of the model gets a copy, so an in-place op downstream
            # (e.g. ReLU(inplace=True)) cannot change the tensor whose gradient we ask for.
            if layer.channels_last:
                passed_on = to_channels_last(output, copy=layer.copy_output)
            elif layer.copy_output:
                passed_on = with_outputs(output, [None if o is None else o.clone() for o in outputs])
            else:
                passed_on = output
            layer_input = (detached_call(args, kwargs) if layer.rule.whole_call
                           else first_tensor(args, kwargs).detach())
            captured[id(module)] = _Captured(layer_input, outputs, versions(outputs), passed_on)
            return passed_on if passed_on is not output else None
        return hook

    handles = [layer.module.register_forward_hook(make_hook(layer), with_kwargs=True) for layer in plan.fast]
    if plan.head is not None:
        handles.append(plan.head.register_forward_pre_hook(lambda module, args: head_input.append(args[0].detach())))
    try:
        logits = forward_with_copies(model, x, copies)
    finally:
        for h in handles:
            h.remove()
    for layer in plan.fast:
        call = captured[id(layer.module)]
        if modified(call.outputs, call.versions):
            raise GradmetaError(f"layer {layer.name or type(layer.module).__name__}: its output was modified in "
                                "place, which the probe at planning did not show (a data-dependent forward?)")
    features = head_input[0].flatten(1) if len(head_input) == 1 else None
    return logits, captured, features


def layer_factors(a: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    """The factors of one layer's per-sample gradient: the L1 and L2 norms (n,) float64 of each
    sample's layer input ``a`` (n, ...) and of the loss's gradient with respect to its output ``g``
    (n, ...), summed in their own dtype. For a Linear layer on one vector per sample the weight
    gradient is g a^T, so its L1 and L2 norms are exactly input_l1 x outgrad_l1 and input_l2 x
    outgrad_l2 (Igoe et al. 2022); for a convolution or a sequence they are the factors of a sum of
    such products."""
    out = {}
    for name, values in (("input", a.flatten(1)), ("outgrad", g.flatten(1))):
        # reduced in the tensor's own dtype, as the engine's other per-sample sums (float32: a whole-tensor
        # float64 copy cost a third more of the engine's time than the factors themselves)
        out[f"{name}_l1"] = values.abs().sum(1).double()
        out[f"{name}_l2"] = torch.linalg.vector_norm(values, dim=1).double()
    return out


def _layer_moments(layer: Layer, call: _Captured, grads: tuple[torch.Tensor | None, ...],
                   needs: Needs, factors: dict[str, torch.Tensor] | None = None) -> dict[str, Moments]:
    """One ruled layer's moments (the module's own parameter names) from its call and output gradients;
    ``factors``, when given, receives ``<layer>/<factor>`` of :func:`layer_factors` (not for a whole-call rule)."""
    grads = tuple(None if o is None else torch.zeros_like(o) if g is None else g.detach()
                  for o, g in zip(call.outputs, grads))
    if layer.rule.whole_call:
        return layer.rule.compute(layer.module, call.layer_input, grads, needs)
    a, g = call.layer_input, grads[0]
    if layer.sample_dim:
        a, g = a.movedim(layer.sample_dim, 0), g.movedim(layer.sample_dim, 0)
    if factors is not None:
        factors.update({f"{layer.name or 'model'}/{k}": v for k, v in layer_factors(a, g).items()})
    return layer.rule.compute(layer.module, a, g, needs)


def _ruled_moments(plan: Plan, captured: dict[int, _Captured], copies: dict[str, torch.Tensor], logits: torch.Tensor,
                   y: torch.Tensor, needs: Needs, target: Target, retain_graph: bool = False,
                   factors: dict[str, torch.Tensor] | None = None) -> dict[str, Moments]:
    """Moments of every ruled layer's parameters and of every broadcast parameter (the gradient of its
    per-sample copy: row i is sample i's) from one backward of the target's summed loss (``retain_graph``:
    keep the forward's graph for a further target's backward); ``factors``, when given, receives every
    ruled layer's :func:`layer_factors`."""
    if not plan.fast and not copies:
        return {}
    calls = [captured[id(layer.module)] for layer in plan.fast]
    outputs = [o for call in calls for o in call.outputs if o is not None] + list(copies.values())
    loss = target.loss(logits, y)
    flat = iter(torch.autograd.grad(loss, outputs, allow_unused=True, retain_graph=retain_graph))
    moments: dict[str, Moments] = {}
    for layer, call in zip(plan.fast, calls):
        grads = tuple(None if o is None else next(flat) for o in call.outputs)
        per_param = _layer_moments(layer, call, grads, needs, factors)
        moments.update({full: per_param[own] for full, own in layer.params})
    for name, copy in copies.items():
        g = next(flat)
        g = torch.zeros_like(copy) if g is None else g.detach()
        moments[name] = moments_of(g.reshape(len(g), -1), needs)
    return moments


def process_chunk_targets(model: nn.Module, plan: Plan, x: torch.Tensor, labels: torch.Tensor | None,
                          needs: Needs, targets: Sequence[Target], with_factors: bool = False) -> list[ChunkResult]:
    """The targets of one chunk x (n, ...): one batched forward, then one backward per target through the
    same graph, exact per-sample moments of every parameter; one ChunkResult per target, in order (logits,
    labels and penultimate features shared; ``labels`` (n,), or None for the model's own prediction). Each target's
    moments are the ones its own forward + backward gives; ``with_factors``: the first target's result
    holds its :func:`layer_factors` of every ruled layer (the others' are not computed: only the first
    target's factors are read)."""
    copies = per_sample_copies(plan.broadcast, len(x))
    logits, captured, features = _forward_capturing(model, plan, x, copies)
    y = logits.detach().argmax(1) if labels is None else labels
    last = plan.head_layer
    results = []
    for i, target in enumerate(targets):
        factors: dict[str, torch.Tensor] | None = {} if with_factors and i == 0 else None
        moments = _ruled_moments(plan, captured, copies, logits, y, needs, target, retain_graph=i < len(targets) - 1,
                                 factors=factors)
        if last is not None and needs.mean and target.zero_sum:
            # The logits layer's output gradient (p - onehot(y), or p - u) sums to 0, so the means of its
            # weight gradient (sum g_i * sum a_j / count) and bias gradient are exactly 0, not rounding noise.
            for name, _ in last.params:
                moments[name].mean = torch.zeros_like(moments[name].mean)
        if plan.generic_params:
            moments.update(generic_moments(model, plan.generic_params, x, y, needs, target))
        ordered = {full: moments[full] for layer in plan.layers for full, _ in layer.params}
        results.append(ChunkResult(logits.detach(), y, ordered, features, factors or {}))
    return results


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


def _check_images(images: object) -> torch.Tensor:
    """``images`` must be a tensor (N, ...): floating point with finite values (the first bad image is
    named), or integer indices for a model that embeds them (not uint8: that is undecoded pixels)."""
    if not isinstance(images, torch.Tensor):
        hint = " (use torch.from_numpy)" if type(images).__module__ == "numpy" else ""
        raise GradmetaError(f"images must be a torch.Tensor (N, ...), got {type(images).__name__}{hint}")
    if images.dim() < 1 or images.dtype in (torch.uint8, torch.bool) or images.is_complex():
        raise GradmetaError(f"images must be a floating-point tensor (N, ...) (or integer token ids), got "
                            f"{images.dtype} of shape {tuple(images.shape)}; convert pixels with x.float() / 255")
    first = first_non_finite_row(images)  # a block of rows at a time: memory flat in N
    if first is not None:
        raise GradmetaError(f"image {first} has non-finite values (NaN or inf); gradients of it are undefined")
    return images


def _check_labels(labels: torch.Tensor | str, n: int) -> torch.Tensor | None:
    """None for ``"predicted"``, else an integer LongTensor (n,) of non-negative classes."""
    if isinstance(labels, str):
        if labels != "predicted":
            raise GradmetaError(f"labels must be 'predicted' or a tensor of class indices, got {labels!r}")
        return None
    label_tensor = torch.as_tensor(labels)
    if label_tensor.is_floating_point() or label_tensor.is_complex() or label_tensor.dtype == torch.bool:
        raise GradmetaError(f"labels must be integer class indices, got {label_tensor.dtype}")
    label_tensor = label_tensor.long()
    if label_tensor.shape != (n,):
        raise GradmetaError(f"labels must have shape ({n},), got {tuple(label_tensor.shape)}")
    if n and int(label_tensor.min()) < 0:
        raise GradmetaError(f"labels must be class indices >= 0, got {int(label_tensor.min())}")
    return label_tensor


def _checked_arguments(model: nn.Module, images: object, statistics: Sequence[str], chunk_size: int,
                       labels: torch.Tensor | str) -> tuple[tuple[str, ...], torch.Tensor | None]:
    """Validated statistics, and the labels: None for ``"predicted"``, else a LongTensor (n,).
    Bad arguments raise a GradmetaError naming them (class indices are checked against the
    model's outputs once its plan is made)."""
    stats = validate_statistics(statistics)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
        raise GradmetaError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise GradmetaError("model must be a torch.nn.Module with parameters (there is no gradient to measure)")
    images = _check_images(images)
    check_input_dtype(model, images)
    return stats, _check_labels(labels, len(images))


def _chunk_results(model: nn.Module, images: torch.Tensor, stats: tuple[str, ...], labels: torch.Tensor | None,
                   chunk_size: int, targets: Sequence[Target],
                   with_factors: bool = False) -> Iterator[list[ChunkResult]]:
    """``process_chunk_targets`` over consecutive chunks of ``images`` (arguments already validated)."""
    if len(images) == 0:
        return
    needs = Needs.of(stats)
    device = next(model.parameters()).device
    with _eval_with_grads(model):
        plan = plan_layers(model, images[:1].to(device, copy=True))  # copies: the model never gets the caller's storage
        log.debug("per-sample gradient paths: %s; channels-last: %s", plan.paths(), plan.channels_last)
        if labels is not None and int(labels.max()) >= plan.num_classes:
            raise GradmetaError(f"labels must be class indices < {plan.num_classes} (the model's outputs), "
                                f"got {int(labels.max())}")
        for start in range(0, len(images), chunk_size):
            x = images[start: start + chunk_size].to(device, copy=True)
            if plan.channels_last:
                x = to_channels_last(x)
            y = None if labels is None else labels[start: start + chunk_size].to(device)
            yield process_chunk_targets(model, plan, x, y, needs, targets, with_factors)


def iterate_targets(model: nn.Module, images: torch.Tensor, targets: Sequence[str],
                    statistics: Sequence[str] = PAPER_STATISTICS, labels: torch.Tensor | str = "predicted",
                    chunk_size: int = DEFAULT_CHUNK_SIZE,
                    on_chunk: Callable[[int], None] | None = None, with_factors: bool = False,
                    ) -> Iterator[dict[str, tuple[ChunkResult, dict[str, torch.Tensor]]]]:
    """Process ``images`` chunk by chunk for several gradient targets at once (one forward per
    chunk); yields {target: (ChunkResult, chunk features as in :func:`chunk_features`)} in the order
    of ``targets``. Each target's values equal :func:`iterate_chunks` with that target alone;
    ``with_factors``: the first target's ChunkResult holds its :func:`layer_factors`."""
    if isinstance(targets, str) or not targets or len(set(targets)) != len(targets):
        raise GradmetaError(f"targets must be a non-empty list of distinct target names, got {targets!r}")
    chosen = [target_named(t) for t in targets]
    stats, label_tensor = _checked_arguments(model, images, statistics, chunk_size, labels)
    for results in _chunk_results(model, images, stats, label_tensor, chunk_size, chosen, with_factors):
        yield {t.name: (r, chunk_features(r, stats)) for t, r in zip(chosen, results)}
        if on_chunk is not None:
            on_chunk(len(results[0].labels))


def iterate_chunks(model: nn.Module, images: torch.Tensor, statistics: Sequence[str] = PAPER_STATISTICS,
                   labels: torch.Tensor | str = "predicted", chunk_size: int = DEFAULT_CHUNK_SIZE,
                   on_chunk: Callable[[int], None] | None = None,
                   target: str = "cross_entropy") -> Iterator[tuple[ChunkResult, dict[str, torch.Tensor]]]:
    """Process ``images`` chunk by chunk; yields (ChunkResult, chunk features as in
    :func:`chunk_features`). Arguments as :func:`gradient_statistics`; validated before any work."""
    for by_target in iterate_targets(model, images, [target], statistics, labels, chunk_size, on_chunk):
        yield by_target[target]


def gradient_statistics(model: nn.Module, images: torch.Tensor, statistics: Sequence[str] = PAPER_STATISTICS,
                        labels: torch.Tensor | str = "predicted", chunk_size: int = DEFAULT_CHUNK_SIZE,
                        *, target: str = "cross_entropy") -> dict[str, torch.Tensor]:
    """Exact per-sample gradient statistics of the cross-entropy for a batch of images.

    ``images`` (N, ...) as the model takes them; ``labels`` is ``"predicted"`` (the paper's choice,
    argmax of the model's own logits) or a LongTensor (N,) of classes. ``target`` is the loss whose gradient is measured:
    ``cross_entropy`` (the paper's), ``kl_uniform`` or ``bce_ones`` (:mod:`.targets`; these two
    ignore the labels). Returns float32 tensors (N,) on the CPU keyed
    ``grad/<parameter name>/<statistic>`` for every parameter tensor, in the model's parameter
    order, then ``grad/all/<statistic>`` (rows of one (F, N) tensor). The model is run in eval mode
    on its own device; its mode and requires_grad flags are restored afterwards.
    """
    chosen = target_named(target)
    stats, label_tensor = _checked_arguments(model, images, statistics, chunk_size, labels)
    if len(images) == 0:  # no rows, but the columns a caller expects
        names = [f"grad/{name}/{st}" for name, _ in model.named_parameters() for st in stats]
        return {k: torch.empty(0) for k in names + [f"grad/all/{st}" for st in stats]}
    names: list[str] = []
    table = torch.empty(0)
    start = 0
    for (result,) in _chunk_results(model, images, stats, label_tensor, chunk_size, [chosen]):
        names, values = chunk_table(result, stats)
        if start == 0:  # allocated once: per-chunk results never pile up between large temporaries
            table = torch.empty(len(names), len(images), dtype=torch.float32)
        table[:, start: start + values.shape[1]] = values
        start += values.shape[1]
    return dict(zip(names, table.unbind(0)))
