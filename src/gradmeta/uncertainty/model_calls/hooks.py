"""Running a model once with temporary forward hooks (nothing is left registered afterwards)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


def forward_with_hooks(model: nn.Module, modules: Iterable[nn.Module], hook: Callable[..., Any],
                       x: torch.Tensor, with_kwargs: bool = False) -> torch.Tensor:
    """``model(x)`` without gradients, with ``hook(module, inputs, output)`` (``hook(module, args, kwargs,
    output)`` when ``with_kwargs``) on each of ``modules`` for the duration of the call; the hooks are
    removed even if the forward raises."""
    handles = [m.register_forward_hook(hook, with_kwargs=with_kwargs) for m in modules]
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for h in handles:
            h.remove()
