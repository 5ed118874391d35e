"""Process-wide settings for reproducible runs: thread counts, seeds, device choice."""

from __future__ import annotations

import random

import numpy as np
import torch

from gradmeta.core.errors import GradmetaError
from gradmeta.core.kernels import is_pinned

DEVICES = ("cpu", "cuda", "auto")


def configure(threads: int, seed: int | None = None) -> None:
    """Fix torch's thread count and turn on deterministic algorithms; seed every RNG if given.

    In a process whose CPU kernels are pinned (:mod:`gradmeta.core.kernels`, the stages), torch's oneDNN and
    NNPACK convolutions are switched off too: their blockings follow the CPU's caches and vendor, not only its
    instruction set, so they may sum in another order on another CPU. Convolutions then run as ATen's
    im2col + BLAS, whose BLAS (MKL) is pinned.
    """
    torch.set_num_threads(threads)
    if is_pinned():
        torch.backends.mkldnn.enabled = False
        torch.backends.nnpack.set_flags(False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)


def resolve_device(name: str, param: str = "device") -> torch.device:
    """Map a ``device`` parameter (cpu, cuda, auto) to a torch device, failing clearly if absent; errors
    name ``param`` (e.g. ``params.yaml: train.device``)."""
    if name not in DEVICES:
        raise GradmetaError(f"{param} must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GradmetaError(f"{param} is 'cuda' but torch sees no CUDA device (a CPU build of torch, or no GPU); "
                            "set it to cpu or auto")
    return torch.device(name)
