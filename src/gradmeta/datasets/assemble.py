"""Pieces every source builder shares: named random streams and the parts that make a concept."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An RNG for one named stream (e.g. ``digits/test``), independent of every other stream."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(stream.encode())])))


@dataclass(frozen=True)
class Part:
    """Images of one split: uint8 (n, 28, 28), labels int (n,) (-1 = none), positions in the source."""

    split: str
    images: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray


@dataclass
class Built:
    """What a source builder returns: the concept's parts in order and where they came from."""

    parts: list[Part]
    provenance: dict[str, Any] = field(default_factory=dict)


def unlabelled(split: str, images: np.ndarray) -> Part:
    """A part without labels whose source positions are 0..n-1."""
    n = len(images)
    return Part(split, images, np.full(n, -1, dtype=np.int64), np.arange(n))
