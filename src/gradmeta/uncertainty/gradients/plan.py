"""Planning: which path computes each parameter's per-sample gradient, and how the model runs.

Made once per call on one probe image (:func:`plan_layers`):
- every module that owns parameters becomes a :class:`Layer`, with the rule of its type
  (:mod:`gradmeta.uncertainty.gradients.rules`) or none (the generic exact path);
- a module a rule refuses is refused (a BatchNorm that normalises with batch statistics: samples
  interact);
- a module called more or less than once per forward, or sharing a parameter with another
  module, goes through the generic path (a rule sees one call's input and output);
- the samples' dimension of each ruled module's input and output is found on a second probe of
  two samples (e.g. dimension 1 for a Linear inside a sequence-first transformer); a module whose
  samples are not where its rule takes them, or are folded into another dimension, goes through
  the generic path;
- a rule that owns its submodules (attention's ``out_proj``) takes their parameters;
- a layer whose output is modified in place downstream (e.g. ``ReLU(inplace=True)``) passes a
  copy on, so the tensor whose gradient is asked for keeps its values;
- a bare parameter of shape (1, ...) of a module without a rule that every sample shares by
  broadcasting (a ViT's position embedding and class token) takes the per-sample copy path
  (:mod:`.broadcast`) where the probe shows that the model takes a copy;
- the model's *head*: the ``nn.Linear`` whose output is the logits (its input is the penultimate
  features every feature detector, GradNorm and the gradient-direction detectors read), found here
  once for the whole run;
- the CPU layout (:mod:`gradmeta.uncertainty.gradients.layout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gradmeta.uncertainty.gradients import broadcast
from gradmeta.uncertainty.gradients.calls import first_tensor, modified, output_tensors, sample_dim, versions
from gradmeta.uncertainty.gradients.layout import accepts_channels_last
from gradmeta.uncertainty.gradients.rules import Rule, refuse_unmeasurable, rule_for
from gradmeta.uncertainty.model_calls.hooks import forward_with_hooks
from gradmeta.uncertainty.model_calls.model_io import checked_logits

GENERIC = "generic"


@dataclass
class Layer:
    """A module that owns parameters, and how its per-sample gradients are computed."""

    name: str          # module name ('' for the root)
    module: nn.Module
    rule: Rule | None  # None: the generic exact path
    params: list[tuple[str, str]]  # (full parameter name, the module's own name for it)
    copy_output: bool = False  # an in-place op downstream modifies the output: pass a copy on
    channels_last: bool = False  # pass the (4-D) output on in channels-last layout
    sample_dim: int = 0  # the dimension of the input and output that holds the samples
    broadcast: bool = False  # one bare parameter shared by broadcasting: the per-sample copy path

    @property
    def path(self) -> str:
        """The name of the rule that computes this layer, ``broadcast`` or ``generic``."""
        return self.rule.name if self.rule is not None else broadcast.NAME if self.broadcast else GENERIC


@dataclass
class Plan:
    """Every parameter-owning layer in registration order; ``fast`` have a rule, ``broadcast`` are the
    parameters (full name -> tensor) the forward gets per-sample copies of, ``generic_params`` are the
    full names the generic path differentiates; ``channels_last``: the inputs are too."""

    layers: list[Layer]
    channels_last: bool = False
    num_classes: int = 0  # the model's outputs per sample (from the probe)
    head: nn.Linear | None = None  # the nn.Linear whose output is the logits, if there is one
    fast: list[Layer] = field(init=False)
    head_layer: Layer | None = field(init=False)  # the head's ruled layer, if it has a rule
    broadcast: dict[str, torch.Tensor] = field(init=False)
    generic_params: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.fast = [layer for layer in self.layers if layer.rule is not None]
        self.head_layer = next((layer for layer in self.fast if layer.module is self.head), None)
        self.broadcast = {full: layer.module.get_parameter(own) for layer in self.layers if layer.broadcast
                          for full, own in layer.params}
        self.generic_params = [full for layer in self.layers if layer.rule is None and not layer.broadcast
                               for full, _ in layer.params]

    def paths(self) -> dict[str, str]:
        """Parameter name -> the path that computes it (a rule's name or ``generic``), to see why a
        model is slow."""
        return {full: layer.path for layer in self.layers for full, _ in layer.params}


def _owned_layers(model: nn.Module) -> list[Layer]:
    """Parameter-owning modules with their rule; a module sharing a parameter gets none."""
    owners: dict[int, int] = {}
    for module in model.modules():
        for t in module.parameters(recurse=False):
            owners[id(t)] = owners.get(id(t), 0) + 1
    layers, seen = [], set()
    for name, module in model.named_modules():
        refuse_unmeasurable(name, module)
        rule = rule_for(module)
        all_own = list(module.named_parameters(recurse=rule is not None and rule.owns_submodules))
        own = [(f"{name}.{p}" if name else p, p) for p, t in all_own if id(t) not in seen]
        shared = any(owners[id(t)] > 1 or id(t) in seen for _, t in all_own)
        seen.update(id(t) for _, t in all_own)
        if own:
            layers.append(Layer(name, module, None if shared else rule, own))
    return layers


def _probe(model: nn.Module, modules: list[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, dict[int, list]]:
    """``model(x)`` without gradients; per module (by id) a list of its calls as (shape of its first input
    tensor, its output tensors, their versions right after the call)."""
    calls: dict[int, list] = {}

    def record(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        first, outputs = first_tensor(args, kwargs), output_tensors(output)
        calls.setdefault(id(module), []).append((None if first is None else first.shape, outputs, versions(outputs)))

    return forward_with_hooks(model, modules, record, x, with_kwargs=True), calls


def _sample_dim_of(layer: Layer, calls: dict[int, list], calls_of_two: dict[int, list],
                   owned: list[nn.Module]) -> int | None:
    """The dimension holding the samples in ``layer``'s input and output, from its call on one sample and on
    two; None when its rule cannot compute it: not called exactly once, an owned submodule called on its
    own, no tensor input or output, or samples not in one dimension its rule takes them in."""
    seen, seen_two = calls.get(id(layer.module), []), calls_of_two.get(id(layer.module), [])
    if any(id(m) in calls for m in owned) or len(seen) != 1 or len(seen_two) != 1:
        return None
    (shape, outputs, _), (shape_two, outputs_two, _) = seen[0], seen_two[0]
    if shape is None or not outputs or outputs[0] is None:
        return None
    dim = sample_dim(shape, shape_two)
    if dim is None or sample_dim(outputs[0].shape, outputs_two[0].shape) != dim:
        return None
    return dim if dim in layer.rule.sample_dims(layer.module, len(shape)) else None


def _head(linears: list[nn.Module], calls: dict[int, list], logits: torch.Tensor) -> nn.Linear | None:
    """The one of ``linears`` called once whose output is the model's logits (the very tensor), if any."""
    for module in linears:
        seen = calls.get(id(module), [])
        if len(seen) == 1 and seen[0][1] and seen[0][1][0] is logits:
            return module
    return None


def _probe_calls(model: nn.Module, layers: list[Layer], probe: torch.Tensor) -> tuple[torch.Tensor, nn.Linear | None]:
    """Run ``probe`` once in the standard layout, and twice over as a batch of two: route layers not
    called exactly once, or whose samples are not where their rule takes them, to the generic path;
    mark layers whose output is modified in place downstream; returns the logits of ``probe`` and the
    model's head (:func:`_head`)."""
    fast = [layer for layer in layers if layer.rule is not None]
    owned = {layer.name: [m for m in layer.module.modules() if m is not layer.module]
             for layer in fast if layer.rule.owns_submodules}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    # each module once (a hook registered twice would count two calls)
    modules = list({id(m): m for m in [layer.module for layer in fast]
                    + [m for subs in owned.values() for m in subs] + linears}.values())
    logits, calls = _probe(model, modules, probe)
    checked_logits(logits, len(probe))
    _, calls_of_two = _probe(model, modules, torch.cat([probe, probe]))
    for layer in fast:
        dim = _sample_dim_of(layer, calls, calls_of_two, owned.get(layer.name, []))
        if dim is None:
            layer.rule = None
            continue
        _, outputs, seen = calls[id(layer.module)][0]
        layer.sample_dim = dim
        layer.copy_output = modified(outputs, seen)
    return logits, _head(linears, calls, logits)


def _with_broadcast(model: nn.Module, layers: list[Layer], probe: torch.Tensor) -> list[Layer]:
    """``layers`` with every parameter of a rule-less layer that takes a per-sample copy
    (:func:`.broadcast.takes_per_sample_copy`) split off as a layer of its own on that path, in order."""
    out: list[Layer] = []
    for layer in layers:
        if layer.rule is not None:
            out.append(layer)
            continue
        rest: list[tuple[str, str]] = []
        for full, own in layer.params:
            if broadcast.takes_per_sample_copy(model, full, layer.module.get_parameter(own), probe):
                if rest:
                    out.append(Layer(layer.name, layer.module, None, rest))
                    rest = []
                out.append(Layer(layer.name, layer.module, None, [(full, own)], broadcast=True))
            else:
                rest.append((full, own))
        if rest:
            out.append(Layer(layer.name, layer.module, None, rest))
    return out


def plan_layers(model: nn.Module, probe: torch.Tensor) -> Plan:
    """The plan of ``model`` (in eval mode) for inputs like ``probe`` (a batch of one sample)."""
    layers = _owned_layers(model)
    standard, head = _probe_calls(model, layers, probe)
    layers = _with_broadcast(model, layers, probe)
    wishing = [layer for layer in layers if layer.rule is not None and layer.rule.channels_last]
    channels_last = accepts_channels_last(model, [layer.module for layer in wishing], probe, standard)
    for layer in wishing:
        layer.channels_last = channels_last
    return Plan(layers, channels_last, int(standard.shape[-1]) if standard.dim() > 1 else 1, head)
