"""Which evaluation rows of a concept each extract shard computes (``extract.shards``).

``extract.shards: [0, 1, ..., K-1]`` splits every concept's extraction into K DVC stages
(``extract@<concept>-<k>``). Shard k takes the k-th contiguous block of the concept's evaluation
rows. The blocks are cut at multiples of the batch sizes (``extract.chunk_size`` and
``detectors.chunk_size``), so every batch a shard computes is a batch the unsharded run computes
too, with the same rows: the union of the parts is the unsharded table, value for value and in row
order.
"""

from __future__ import annotations

import math

import numpy as np

from gradmeta.core.errors import GradmetaError


def block_size(n_rows: int, shards: int, alignment: int) -> int:
    """Rows per shard: ceil(n_rows / shards) rounded up to a multiple of ``alignment`` (>= 1)."""
    if shards < 1 or alignment < 1:
        raise GradmetaError(f"shards and alignment must be >= 1, got {shards} and {alignment}")
    per_shard = max(1, math.ceil(n_rows / shards))
    return math.ceil(per_shard / alignment) * alignment


def shard_block(n_rows: int, shard: int, shards: int, alignment: int) -> slice:
    """The positions (among ``n_rows`` evaluation rows) that ``shard`` of ``shards`` computes; its
    ``start`` is a multiple of ``alignment``."""
    size = block_size(n_rows, shards, alignment)
    return slice(shard * size, min(n_rows, (shard + 1) * size))


def shard_rows(rows: np.ndarray, shard: int, shards: int, alignment: int, concept: str = "?") -> np.ndarray:
    """The block of ``rows`` (a concept's evaluation row positions, in order) that ``shard`` of
    ``shards`` computes; a shard left without rows (too few images for K aligned blocks) is a
    GradmetaError naming the concept and the largest K that works."""
    if not 0 <= shard < shards:
        raise GradmetaError(f"shard {shard} is not among the {shards} shards of extract.shards (0..{shards - 1})")
    if len(rows) == 0:
        raise GradmetaError(f"data.concepts.{concept}: its prepared data have no evaluation images (no test split; "
                            "only the known concept's train split is fitted on); give it a test size in params.yaml")
    part = rows[shard_block(len(rows), shard, shards, alignment)]
    if len(part) == 0:
        usable = max(1, math.ceil(len(rows) / alignment))  # K = this gives blocks of exactly one alignment
        raise GradmetaError(f"concept {concept!r}: {len(rows)} evaluation images make at most {usable} shards of "
                            f"whole {alignment}-image batches; shard {shard} of extract.shards "
                            f"(K = {shards}) would be empty: use K <= {usable}")
    return part


def alignment(*chunk_sizes: int) -> int:
    """The block alignment: the least common multiple of the batch sizes."""
    return math.lcm(*chunk_sizes)
