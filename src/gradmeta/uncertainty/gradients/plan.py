"""Planning: which path computes each parameter's per-sample gradient, and how the model runs.

Made once per call on one probe image (:func:`plan_layers`):
- every module that owns parameters becomes a :class:`Layer`, with the rule of its type
  (:mod:`gradmeta.uncertainty.gradients.rules`) or none (the generic exact path);
- a BatchNorm that normalises with batch statistics is refused (samples interact);
- a module called more or less than once per forward, or sharing a parameter with another
  module, goes through the generic path (a rule sees one call's input and output);
- a layer whose output is modified in place downstream (e.g. ``ReLU(inplace=True)``) passes a
  copy on, so the tensor whose gradient is asked for keeps its values;
- the CPU layout (:mod:`gradmeta.uncertainty.gradients.layout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gradmeta.core.hooks import forward_with_hooks
from gradmeta.uncertainty.gradients.layout import accepts_channels_last
from gradmeta.uncertainty.gradients.rules import Rule, rule_for
from gradmeta.uncertainty.gradients.rules.batchnorm import refuse_batch_statistics

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

    @property
    def path(self) -> str:
        """The name of the rule that computes this layer, or ``generic``."""
        return self.rule.name if self.rule is not None else GENERIC


@dataclass
class Plan:
    """Every parameter-owning layer in registration order; ``fast`` have a rule, ``generic_params``
    are the full names the generic path differentiates; ``channels_last``: the inputs are too."""

    layers: list[Layer]
    channels_last: bool = False
    num_classes: int = 0  # the model's outputs per sample (from the probe)
    fast: list[Layer] = field(init=False)
    generic_params: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.fast = [layer for layer in self.layers if layer.rule is not None]
        self.generic_params = [full for layer in self.layers if layer.rule is None for full, _ in layer.params]

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
        refuse_batch_statistics(name, module)
        all_own = list(module.named_parameters(recurse=False))
        own = [(f"{name}.{p}" if name else p, p) for p, t in all_own if id(t) not in seen]
        seen.update(id(t) for _, t in all_own)
        shared = any(owners[id(t)] > 1 for _, t in all_own)
        if own:
            layers.append(Layer(name, module, None if shared else rule_for(module), own))
    return layers


def _probe_calls(model: nn.Module, layers: list[Layer], probe: torch.Tensor) -> torch.Tensor:
    """Run ``probe`` once in the standard layout: route layers not called exactly once to the generic
    path, mark layers whose output is modified in place downstream; returns the logits."""
    calls: dict[int, list[tuple[torch.Tensor, int]]] = {}

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        calls.setdefault(id(module), []).append((output, output._version))

    fast = [layer for layer in layers if layer.rule is not None]
    logits = forward_with_hooks(model, [layer.module for layer in fast], record, probe)
    for layer in fast:
        seen = calls.get(id(layer.module), [])
        if len(seen) != 1:
            layer.rule = None
        else:
            output, version = seen[0]
            layer.copy_output = output._version != version
    return logits


def plan_layers(model: nn.Module, probe: torch.Tensor) -> Plan:
    """The plan of ``model`` (in eval mode) for inputs like ``probe`` (a batch of one sample)."""
    layers = _owned_layers(model)
    standard = _probe_calls(model, layers, probe)
    convs = [layer for layer in layers if layer.rule is not None and isinstance(layer.module, nn.Conv2d)]
    channels_last = accepts_channels_last(model, [layer.module for layer in convs], probe, standard)
    for layer in convs:
        layer.channels_last = channels_last
    return Plan(layers, channels_last, int(standard.shape[-1]) if standard.dim() > 1 else 1)
