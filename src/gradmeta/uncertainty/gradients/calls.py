"""What one module call takes and returns, as the engine sees it through forward hooks.

A module may return one tensor or a tuple (``nn.MultiheadAttention``: the attention output and the
weights or None); its input may come positionally or by keyword. These helpers name the tensors
involved so the plan and the engine treat both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from gradmeta.uncertainty.gradients.rules.registry import Call


def first_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The call's first tensor argument (positional before keyword), or None."""
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)


def output_tensors(output: Any) -> tuple[torch.Tensor | None, ...]:
    """A call's outputs as a tuple: a tensor alone, or each entry of a tuple (None where not a tensor)."""
    if isinstance(output, torch.Tensor):
        return (output,)
    if isinstance(output, (tuple, list)):
        return tuple(o if isinstance(o, torch.Tensor) else None for o in output)
    return ()


def versions(outputs: Sequence[torch.Tensor | None]) -> list[int | None]:
    """The version counters of a call's output tensors (None where not a tensor), to see later changes."""
    return [None if o is None else o._version for o in outputs]


def modified(outputs: Sequence[torch.Tensor | None], seen: Sequence[int | None]) -> bool:
    """Whether any of ``outputs`` was modified in place since its version was ``seen`` (:func:`versions`)."""
    return any(o is not None and o._version != v for o, v in zip(outputs, seen))


def with_outputs(output: Any, tensors: Sequence[torch.Tensor | None]) -> Any:
    """``output`` with its tensors replaced by ``tensors`` (same structure as :func:`output_tensors`)."""
    if isinstance(output, torch.Tensor):
        return tensors[0]
    replaced = [t if isinstance(o, torch.Tensor) else o for o, t in zip(output, tensors)]
    return type(output)(replaced) if isinstance(output, list) else tuple(replaced)


def detached_call(args: tuple, kwargs: dict) -> Call:
    """The call with every tensor argument detached; arguments that were one tensor stay one object."""
    seen: dict[int, torch.Tensor] = {}

    def detach(a: Any) -> Any:
        if not isinstance(a, torch.Tensor):
            return a
        if id(a) not in seen:
            seen[id(a)] = a.detach()
        return seen[id(a)]

    return Call(tuple(detach(a) for a in args), {k: detach(v) for k, v in kwargs.items()})


def sample_dim(one: torch.Size, two: torch.Size) -> int | None:
    """The dimension that holds the samples, from a tensor's shape with one sample and with two: the one
    dimension of size 1 that became 2 with all others unchanged; None if there is no such dimension
    (the samples are folded into another one, or the tensor does not depend on them)."""
    if len(one) != len(two):
        return None
    changed = [d for d, (a, b) in enumerate(zip(one, two)) if a != b]
    return changed[0] if len(changed) == 1 and one[changed[0]] == 1 and two[changed[0]] == 2 else None
