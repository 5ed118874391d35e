"""Materialising per-sample gradients a block of samples at a time, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gradmeta.uncertainty.gradients.moments import (
    RAW_ROWS,
    Moments,
    Needs,
    concat_samples,
    moments_from_raw,
    moments_of,
    raw_sums_into,
)

BLOCK_BYTES = 13 << 18  # per-sample gradients materialised at once: a few MB stay in cache


def block_length(n: int, numel: int, element_size: int) -> int:
    """Samples per block for n per-sample gradients of ``numel`` entries: equal blocks of at most ``BLOCK_BYTES``."""
    most = max(1, BLOCK_BYTES // (numel * element_size))
    return -(-n // -(-n // most))


def blockwise_moments(n: int, numel: int, like: torch.Tensor, materialise: Callable[[int, int], torch.Tensor],
                      needs: Needs) -> Moments:
    """Moments of n per-sample gradients of ``numel`` entries each; ``materialise(i, j)`` returns the
    gradients of samples i..j-1 as a fresh (j - i, numel) tensor (consumed: it may be overwritten).
    Blocks are equal and hold at most ``BLOCK_BYTES``; ``like`` gives the dtype and device."""
    block = block_length(n, numel, like.element_size())
    starts = range(0, n, block)
    if needs.higher:  # central moments need each block's values: reduce block by block
        return concat_samples([moments_of(materialise(i, i + block), needs, scratch=True) for i in starts])
    raw = like.new_empty(len(RAW_ROWS), n)
    for i in starts:
        raw_sums_into(materialise(i, i + block), needs, raw[:, i: i + block], scratch=True)
    return moments_from_raw(raw, numel, needs)
