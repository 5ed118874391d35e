"""Images given as batches: a ``torch.utils.data.DataLoader`` or any iterable of batches, each a tensor or an
``(images, labels, ...)`` tuple or list (what a DataLoader over a ``TensorDataset`` or a torchvision-style
dataset yields), gathered into one tensor on the CPU, in order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from gradmeta.core.errors import GradmetaError


def is_batches(data: Any) -> bool:
    """Whether ``data`` is batches (an iterable that is neither a tensor nor a NumPy array, string or mapping)."""
    if isinstance(data, (torch.Tensor, str, bytes, dict)) or type(data).__module__ == "numpy":
        return False
    return isinstance(data, Iterable)


def gather_batches(data: Iterable[Any], what: str = "images") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels) of every batch of ``data``, concatenated on the CPU; labels are None when the batches
    are bare tensors. A batch of another kind, or batches that disagree, is one line naming the batch."""
    images, labels = [], []
    for i, batch in enumerate(data):
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            x, y = batch[0], batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        elif isinstance(batch, torch.Tensor):
            x, y = batch, None
        else:
            raise GradmetaError(f"{what}: batch {i} is a {type(batch).__name__}; a batch is a tensor or an "
                                "(images, labels, ...) tuple of tensors")
        if labels and (y is None) != (labels[-1] is None):
            raise GradmetaError(f"{what}: batch {i} {'lacks' if y is None else 'has'} labels where the ones before "
                                f"{'had' if y is None else 'had none'}")
        images.append(x.detach().cpu())
        labels.append(None if y is None else y.detach().cpu())
    if not images:
        raise GradmetaError(f"{what}: the batches are empty")
    try:
        stacked = torch.cat(images)
    except RuntimeError as exc:
        raise GradmetaError(f"{what}: the batches' images do not stack ({exc})") from None
    return stacked, None if labels[0] is None else torch.cat(labels)
