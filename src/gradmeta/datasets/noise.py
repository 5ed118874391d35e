"""Uniform noise images: every pixel U[0, 1], quantised to uint8; identical for both sources."""

from __future__ import annotations

import numpy as np

from gradmeta.core.concepts import IMAGE_SIZE


def uniform_noise(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` images uint8 (count, 28, 28) with pixels floor(256 u), u ~ U[0, 1)."""
    u = rng.random((count, IMAGE_SIZE, IMAGE_SIZE))
    return np.minimum(np.floor(u * 256.0), 255).astype(np.uint8)
