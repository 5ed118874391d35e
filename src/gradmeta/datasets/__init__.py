"""Data sources: readers for the original archives, the downloader, synthetic stand-ins, the registry.

Public readers (archive file -> arrays) for data you already have:
:func:`read_emnist`, :func:`read_omniglot`, :func:`read_cifar10_test`; and
:func:`prepare_concept` to build a whole concept from a :class:`DataConfig`.
"""

from gradmeta.datasets.cifar10 import read_cifar10_test
from gradmeta.datasets.config import DataConfig
from gradmeta.datasets.download import ARCHIVES, ArchiveSpec, ensure_archive
from gradmeta.datasets.emnist import read_emnist, read_idx
from gradmeta.datasets.omniglot import read_omniglot
from gradmeta.datasets.registry import prepare_concept
from gradmeta.prepared import PreparedData, load_prepared, save_prepared

__all__ = [
    "ARCHIVES", "ArchiveSpec", "DataConfig", "PreparedData",
    "ensure_archive", "load_prepared", "prepare_concept", "read_cifar10_test", "read_emnist", "read_idx",
    "read_omniglot", "save_prepared",
]
