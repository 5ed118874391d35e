"""Finite-value checks that stay flat in memory: a whole-tensor ``torch.isfinite`` allocates a bool
tensor of the input's size (on a 576 MB input it cost 988 MB more); this checks blocks of rows."""

from __future__ import annotations

import torch

ROWS_PER_BLOCK = 1024


def first_non_finite_row(values: torch.Tensor, rows_per_block: int = ROWS_PER_BLOCK) -> int | None:
    """The first row (index along dimension 0) of a floating-point tensor holding a NaN or an infinity,
    or None; checked ``rows_per_block`` rows at a time."""
    if not values.is_floating_point() or values.numel() == 0:
        return None
    for start in range(0, len(values), rows_per_block):
        block = values[start: start + rows_per_block]
        finite = torch.isfinite(block).reshape(len(block), -1).all(1)
        if not bool(finite.all()):
            return start + int((~finite).nonzero()[0, 0])
    return None
