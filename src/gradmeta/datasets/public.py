"""Builders of concepts from public archives: fetched once into the cache, verified by MD5, subsampled
with the concept's own seeded stream (``<concept>/<split>``); ``None`` counts take every image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradmeta.datasets.assemble import Built, Part, stream_rng
from gradmeta.datasets.cifar10 import read_cifar10, read_cifar10_test
from gradmeta.datasets.download import ARCHIVES, archive_url, ensure_archive
from gradmeta.datasets.emnist import read_emnist
from gradmeta.datasets.imageops import subsample_indices
from gradmeta.datasets.mnist import read_idx_images
from gradmeta.datasets.omniglot import list_omniglot, read_omniglot
from gradmeta.datasets.selection import choose, positions_by_index

if TYPE_CHECKING:
    from gradmeta.datasets.config import ConceptSpec, DataConfig


def fetch(cfg: DataConfig, key: str, records: list[dict]) -> Path:
    """The verified archive ``ARCHIVES[key]`` in the cache (downloaded if missing); records its provenance."""
    spec = ARCHIVES[key]
    record = ensure_archive(spec, cfg.archive_dir, mirror=cfg.mirror, retries=cfg.retries, timeout=cfg.timeout)
    records.append(record.provenance(spec, archive_url(spec, cfg.mirror)))
    return record.path


def subsample(spec: ConceptSpec, cfg: DataConfig, split: str, images: np.ndarray, labels: np.ndarray,
              count: int | None, archive: str = "the archive") -> Part:
    """The part of one split of an array archive: the images the concept's image list names (test split), then
    a seeded subset of ``count`` (:func:`gradmeta.datasets.selection.choose`)."""
    idx = choose(spec, cfg, split, len(images), count, lambda: positions_by_index(split, len(images)), archive)
    return Part(split, images[idx], labels[idx], idx)


def emnist(subset: str):
    """A builder for one EMNIST subset (``digits`` or ``letters``) of ``gzip.zip``."""
    def build(spec: ConceptSpec, cfg: DataConfig) -> Built:
        records: list[dict] = []
        path = fetch(cfg, "emnist", records)
        parts = []
        for split, count in spec.split_counts():
            images, labels = read_emnist(path, subset, split, verify=False)  # fetch verified it
            parts.append(subsample(spec, cfg, split, images, labels, count))
        return Built(parts, {"archives": records, "seed": cfg.seed})
    return build


def idx_dataset(name: str):
    """A builder for a data set published as four IDX files (``mnist``, ``fashion_mnist``)."""
    def build(spec: ConceptSpec, cfg: DataConfig) -> Built:
        records: list[dict] = []
        parts = []
        for split, count in spec.split_counts():
            images, labels = read_idx_images(fetch(cfg, f"{name}_{split}_images", records),
                                             fetch(cfg, f"{name}_{split}_labels", records))
            parts.append(subsample(spec, cfg, split, images, labels, count))
        return Built(parts, {"archives": records, "seed": cfg.seed})
    return build


def omniglot(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """Drawings from both archives (background, evaluation), labelled by character, drawn together."""
    records: list[dict] = []
    members: list[tuple[str, str, str]] = []  # (split, archive path, member)
    keys: list[str] = []
    for split in ("background", "evaluation"):
        path = fetch(cfg, f"omniglot_{split}", records)
        for name, key in list_omniglot(path):
            members.append((split, str(path), name))
            keys.append(f"{split}/{key}")
    classes = {k: i for i, k in enumerate(sorted(set(keys)))}
    idx = subsample_indices(len(members), spec.test, stream_rng(cfg.seed, f"{spec.name}/all"))
    parts = []
    for split in ("background", "evaluation"):
        chosen = [i for i in idx if members[i][0] == split]
        if chosen:
            images, _ = read_omniglot(members[chosen[0]][1], [members[i][2] for i in chosen], verify=False)
            parts.append(Part(split, images, np.array([classes[keys[i]] for i in chosen]), np.array(chosen)))
    return Built(parts, {"archives": records, "seed": cfg.seed})


def cifar10(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """CIFAR-10 in colour, 32x32 RGB: its training batches (the train split) and its test batch."""
    records: list[dict] = []
    path = fetch(cfg, "cifar10", records)
    parts = []
    for split, count in spec.split_counts():
        images, labels = read_cifar10(path, split, verify=False)  # fetch verified it
        parts.append(subsample(spec, cfg, split, images, labels, count))
    return Built(parts, {"archives": records, "seed": cfg.seed})


def cifar10_grey(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """CIFAR-10's test batch in grey (ITU-R 601 luminance), area-resized to 28x28."""
    records: list[dict] = []
    images, labels = read_cifar10_test(fetch(cfg, "cifar10", records), verify=False)
    return Built([subsample(spec, cfg, "test", images, labels, spec.test)], {"archives": records, "seed": cfg.seed})
