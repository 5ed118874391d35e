"""Noise images, the two kinds of Hendrycks & Gimpel's out-of-distribution table (ICLR 2017)."""

from __future__ import annotations

import numpy as np

from gradmeta.core.concepts import IMAGE_SIZE


def uniform_noise(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` images uint8 (count, 28, 28) with pixels floor(256 u), u ~ U[0, 1)."""
    u = rng.random((count, IMAGE_SIZE, IMAGE_SIZE))
    return np.minimum(np.floor(u * 256.0), 255).astype(np.uint8)


def gaussian_noise(count: int, rng: np.random.Generator, mean: float = 0.5, std: float = 1.0) -> np.ndarray:
    """``count`` images uint8 (count, 28, 28): every pixel N(``mean``, ``std``^2) clipped to [0, 1],
    then rounded to the nearest of 0..255 (so about 31% of pixels are 0 and 31% are 255)."""
    x = np.clip(rng.normal(mean, std, (count, IMAGE_SIZE, IMAGE_SIZE)), 0.0, 1.0)
    return np.rint(x * 255.0).astype(np.uint8)
