"""The registry from module type to its per-sample gradient rule.

A rule computes, for one module called once in the forward pass, the exact per-sample gradient
moments of the module's own parameters from what the batched pass gives:

    rule(module, layer_input, output_grad, needs) -> {"weight": Moments, "bias": Moments, ...}

``layer_input`` is the module's (first) input and ``output_grad`` the gradient of the summed loss
with respect to its output (both batched, first dimension = samples, so the per-sample output
gradient is a row of it). Keys are the module's own parameter names (``named_parameters(recurse=False)``).

Rules are looked up by the module's exact type (a subclass may change ``forward``) and may decline
a configuration they do not cover (``applies``); such modules go through the generic exact path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs

RuleFunction = Callable[[nn.Module, torch.Tensor, torch.Tensor, Needs], dict[str, Moments]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: its name (shown in the plan), the function, and which modules it covers."""

    name: str
    compute: RuleFunction
    applies: Callable[[nn.Module], bool]


_RULES: dict[type[nn.Module], Rule] = {}


def register_rule(*module_types: type[nn.Module], applies: Callable[[nn.Module], bool] = lambda m: True,
                  name: str | None = None) -> Callable[[RuleFunction], RuleFunction]:
    """Decorator: register a rule function for ``module_types`` (exact types)."""

    def decorate(func: RuleFunction) -> RuleFunction:
        rule = Rule(name or func.__name__, func, applies)
        for t in module_types:
            _RULES[t] = rule
        return func

    return decorate


def rule_for(module: nn.Module) -> Rule | None:
    """The rule that covers ``module``, or None (then the generic exact path computes it)."""
    rule = _RULES.get(type(module))
    return rule if rule is not None and rule.applies(module) else None
