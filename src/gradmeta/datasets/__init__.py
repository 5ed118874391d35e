"""Data sources: readers for the original archives, the downloader, synthetic stand-ins, the user's
own files, and the registry that builds a concept from ``params.yaml: data``.

Public readers (file -> arrays) for data you already have: :func:`read_emnist`,
:func:`read_omniglot`, :func:`read_cifar10_test`, :func:`read_idx_images` (MNIST, Fashion-MNIST),
:func:`read_cifar100`, :func:`read_svhn`;
:func:`prepare_concept` builds a whole concept from a :class:`DataConfig`.
"""

from gradmeta.datasets.cifar10 import read_cifar10_test, read_cifar100
from gradmeta.datasets.config import ConceptSpec, DataConfig, default_raw_dir
from gradmeta.datasets.download import ARCHIVES, ArchiveSpec, ensure_archive
from gradmeta.datasets.emnist import read_emnist, read_idx
from gradmeta.datasets.mnist import read_idx_file, read_idx_images
from gradmeta.datasets.omniglot import read_omniglot
from gradmeta.datasets.preparation import prepare_concept
from gradmeta.datasets.sources import SOURCES, USER_FORMATS
from gradmeta.datasets.svhn import read_svhn
from gradmeta.prepared import PreparedData, load_prepared, save_prepared

__all__ = [
    "ARCHIVES", "SOURCES", "USER_FORMATS", "ArchiveSpec", "ConceptSpec", "DataConfig", "PreparedData",
    "default_raw_dir", "ensure_archive", "load_prepared", "prepare_concept", "read_cifar100", "read_cifar10_test",
    "read_emnist", "read_idx", "read_idx_file", "read_idx_images", "read_omniglot", "read_svhn", "save_prepared",
]
