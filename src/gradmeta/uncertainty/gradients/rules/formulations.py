"""Choosing among exact formulations of one per-sample gradient by measuring them, once per layer shape.

A rule may know several ways to materialise the same per-sample gradients (a convolution's: a grouped
convolution, a swapped one, patches times output gradients); which is fastest depends on the layer's shape
and on the kernels this machine runs (instruction set, oneDNN on or off). :func:`choose` times every
applicable formulation on the rule's first block and keeps the fastest for every later call with the same
key (the layer's configuration and shapes, the dtype, the device and the code path), in this process.

In a process whose CPU kernels are pinned (:mod:`gradmeta.core.kernels`: the stages) nothing is measured:
the formulations sum in different orders, and a choice that followed timings would make the bytes the
stages write depend on the machine's speed; the rule's fixed choice is taken instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gradmeta.core.kernels import is_pinned

PerSampleGradients = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
REPEATS = 2  # timed runs per formulation (after one warm-up run); the fastest counts


@dataclass(frozen=True)
class Formulation:
    """One way to compute a layer's per-sample gradients (m, numel) from its input and output gradient."""

    name: str
    compute: PerSampleGradients
    applies: Callable[[nn.Module], bool]


_CHOSEN: dict[Hashable, Formulation] = {}


def code_path(device: torch.device) -> tuple:
    """What decides which kernels run: the device, and on the CPU ATen's capability and oneDNN on or off."""
    if device.type != "cpu":
        return (str(device),)
    return ("cpu", torch.backends.cpu.get_cpu_capability(), torch.backends.mkldnn.enabled)


def _seconds(formulation: Formulation, module: nn.Module, a: torch.Tensor, g: torch.Tensor) -> float:
    """The fastest of ``REPEATS`` timed runs, after a warm-up run."""
    best = float("inf")
    for run in range(REPEATS + 1):
        if a.device.type == "cuda":
            torch.cuda.synchronize(a.device)
        start = time.perf_counter()
        formulation.compute(module, a, g)
        if a.device.type == "cuda":
            torch.cuda.synchronize(a.device)
        if run:
            best = min(best, time.perf_counter() - start)
    return best


def choose(candidates: Sequence[Formulation], fixed: Formulation, module: nn.Module, key: Hashable,
           a: torch.Tensor, g: torch.Tensor) -> Formulation:
    """The formulation for ``module`` on blocks like ``a``, ``g`` (input and output gradient of one block of
    samples): ``fixed`` in a pinned process or when it is the only candidate; else the fastest candidate on
    this block, measured on the first call with ``key`` and remembered for later ones."""
    applicable = [f for f in candidates if f.applies(module)]
    if is_pinned() or len(applicable) < 2:
        return fixed
    key = (key, tuple(a.shape), a.dtype, code_path(a.device))
    if key not in _CHOSEN:
        with torch.no_grad():
            _CHOSEN[key] = min(applicable, key=lambda f: _seconds(f, module, a, g))
    return _CHOSEN[key]


def chosen() -> dict[Hashable, str]:
    """The choices made so far in this process (key -> formulation name), to see what was measured."""
    return {k: f.name for k, f in _CHOSEN.items()}
