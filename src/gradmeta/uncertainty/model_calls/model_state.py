"""A library call leaves the caller's model and random streams as it found them.

:func:`untouched` (a context manager) and :func:`keeps_model_state` (a decorator for a function or method
that takes the model as its first argument after ``self``) record every submodule's own ``training``
flag and the torch random generators' states (CPU, and CUDA where it was initialised), put the model
in eval mode for the call (so no forward updates a BatchNorm's running statistics, not even a planning
probe), and restore each submodule's flag and every generator's state afterwards, also after an
exception. A model in eval mode with a dropout deliberately left on keeps it; a frozen BatchNorm in a
train-mode model stays frozen; a seeded MC dropout pass does not move the caller's random stream.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block; every submodule's mode and the random generators' states restored."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    cpu_rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        torch.random.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def keeps_model_state(function: F) -> F:
    """Run ``function(..., model, ...)`` inside :func:`untouched` of its model: the first positional
    argument that is an ``nn.Module`` (after ``self`` for a method), or the keyword ``model``."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model") or next((a for a in args if isinstance(a, nn.Module)), None)
        with untouched(model):
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
