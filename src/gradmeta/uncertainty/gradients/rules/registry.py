"""The registry from module type to its per-sample gradient rule.

A rule computes, for one module called once in the forward pass, the exact per-sample gradient
moments of the module's own parameters from what the batched pass gives:

    rule(module, layer_input, output_grad, needs) -> {"weight": Moments, "bias": Moments, ...}

``layer_input`` is the module's (first) input and ``output_grad`` the gradient of the summed loss
with respect to its output, both with the samples along the first dimension (the engine moves
them there when the module gets them elsewhere, e.g. a Linear inside a sequence-first
transformer), so the per-sample output gradient is a row of it. Keys are the module's own
parameter names (``named_parameters(recurse=False)``).

A *whole-call* rule (``whole_call=True``, e.g. attention) instead receives the call itself and
the gradients of every tensor the call returned:

    rule(module, call, output_grads, needs)

``call`` is a :class:`Call` (the positional and keyword arguments, tensors detached, identity
kept: ``query is key`` still holds) and ``output_grads`` a tuple with one gradient per output
tensor (a tensor output is a 1-tuple; None for an output that is not a tensor). Such a rule finds
the samples in its arguments itself (:attr:`Rule.sample_dims`). A rule that ``owns_submodules``
computes its submodules' parameters too (keys as ``named_parameters()`` of the module), so a
submodule the module uses through a functional call (``out_proj`` of ``nn.MultiheadAttention``)
is not taken for a layer of its own.

Rules are looked up by the module's exact type (a subclass may change ``forward``) and may decline
a configuration they do not cover (``applies``); such modules go through the generic exact path.
A rule declares the rest of what the plan needs to know about its modules, so a new layer type is one
file: ``refuses(module)`` names what makes a model impossible to measure (a BatchNorm normalising with
the batch's statistics mixes samples; checked on every module of every model), and ``channels_last``
says its outputs are fastest passed on in channels-last layout on the CPU (convolutions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.gradients.moments import Moments, Needs

RuleFunction = Callable[[nn.Module, Any, Any, Needs], dict[str, Moments]]


@dataclass(frozen=True)
class Call:
    """The arguments of one module call: positional ``args`` and keyword ``kwargs``, tensors detached."""

    args: tuple
    kwargs: dict = field(default_factory=dict)


def first_dim_only(module: nn.Module, ndim: int) -> tuple[int, ...]:
    """Sample dimensions of a module whose input must carry the samples first (convolutions, norms)."""
    return (0,)


def any_but_last(module: nn.Module, ndim: int) -> tuple[int, ...]:
    """Sample dimensions of a module acting on the last dimension (Linear): any other one."""
    return tuple(range(max(ndim - 1, 1)))


@dataclass(frozen=True)
class Rule:
    """A registered rule: its name (shown in the plan), the function, and which modules it covers.

    ``sample_dims(module, input_ndim)``: the dimensions of the module's first input (and output)
    along which the rule accepts the samples; the plan finds where they are on two probes (one
    sample, two samples) and sends a module whose samples lie elsewhere, or nowhere, to the
    generic path.
    """

    name: str
    compute: RuleFunction
    applies: Callable[[nn.Module], bool]
    sample_dims: Callable[[nn.Module, int], tuple[int, ...]] = first_dim_only
    whole_call: bool = False
    owns_submodules: bool = False
    channels_last: bool = False


_RULES: dict[type[nn.Module], Rule] = {}
_REFUSALS: dict[str, Callable[[nn.Module], str | None]] = {}  # rule name -> its check of any module


def register_rule(*module_types: type[nn.Module], applies: Callable[[nn.Module], bool] = lambda m: True,
                  name: str | None = None,
                  sample_dims: Callable[[nn.Module, int], tuple[int, ...]] = first_dim_only,
                  whole_call: bool = False, owns_submodules: bool = False, channels_last: bool = False,
                  refuses: Callable[[nn.Module], str | None] | None = None,
                  ) -> Callable[[RuleFunction], RuleFunction]:
    """Decorator: register a rule function for ``module_types`` (exact types); see :class:`Rule` and the
    module docstring (``refuses``: a check of any module, the reason it cannot be measured, or None)."""

    def decorate(func: RuleFunction) -> RuleFunction:
        rule = Rule(name or func.__name__, func, applies, sample_dims, whole_call, owns_submodules, channels_last)
        for t in module_types:
            _RULES[t] = rule
        if refuses is not None:
            _REFUSALS[rule.name] = refuses
        return func

    return decorate


def unregister_rule(*module_types: type[nn.Module]) -> None:
    """Forget the rules of ``module_types`` (and their refusals): their modules take the generic path again."""
    for t in module_types:
        rule = _RULES.pop(t, None)
        if rule is not None and rule not in _RULES.values():
            _REFUSALS.pop(rule.name, None)


def refuse_unmeasurable(name: str, module: nn.Module) -> None:
    """Raise the first registered rule's refusal of ``module`` (named ``name`` in the model), if any."""
    for check in _REFUSALS.values():
        reason = check(module)
        if reason:
            raise GradmetaError(f"{name or type(module).__name__}: {reason}")


def rule_for(module: nn.Module) -> Rule | None:
    """The rule that covers ``module``, or None (then the generic exact path computes it)."""
    rule = _RULES.get(type(module))
    return rule if rule is not None and rule.applies(module) else None
