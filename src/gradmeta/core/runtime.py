"""Process-wide settings for reproducible runs: thread counts, seeds, device choice."""

from __future__ import annotations

import random

import numpy as np
import torch

from gradmeta.core.errors import GradmetaError

DEVICES = ("cpu", "cuda", "auto")


def configure(threads: int, seed: int | None = None) -> None:
    """Fix torch's thread count and turn on deterministic algorithms; seed every RNG if given."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """Map a ``device`` parameter (cpu, cuda, auto) to a torch device, failing clearly if absent."""
    if name not in DEVICES:
        raise GradmetaError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GradmetaError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device(name)
