"""Readers for the CIFAR python archives: CIFAR-10 (``cifar-10-python.tar.gz``): its train and test batches in
colour (the ``cifar10`` source), or the test batch made grey (``cifar10_grey``); CIFAR-100
(``cifar-100-python.tar.gz``): its train and test files with their fine labels (the ``cifar100`` source)."""

from __future__ import annotations

import os
import pickle
import tarfile
from dataclasses import dataclass

import numpy as np

from gradmeta.core.concepts import IMAGE_SIZE
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.imageops import area_resize, rgb_to_grey
from gradmeta.datasets.verify import MAX_MEMBER_BYTES, verify_published

TEST_MEMBER = "cifar-10-batches-py/test_batch"
SPLITS = {"train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)), "test": (TEST_MEMBER,)}
CIFAR100_SPLITS = {"train": ("cifar-100-python/train",), "test": ("cifar-100-python/test",)}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and nothing else: the dicts, lists, bytes and ints of the batch are
    pickle opcodes, and the only globals allowed are numpy's array reconstruction (and ``_codecs.encode``,
    which Python 2 pickles use for bytes). Any other global (``os.system``, ...) is refused."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str):  # noqa: ANN201 - whatever the allowed global is
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name} (a CIFAR-10 batch holds only arrays)")
        return super().find_class(module, name)


def _read_batch(archive: tarfile.TarFile, path: str | os.PathLike[str], member_name: str,
                labels_key: bytes = b"labels", title: str = "CIFAR-10", classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the archive: RGB uint8 (N, 32, 32, 3) and labels int64 (N,) from ``labels_key``, each in
    0..classes-1. A member that is not a plain file (a link, a device) is refused."""
    try:
        info = archive.getmember(member_name)
    except KeyError:
        raise GradmetaError(f"{path}: {title} archive has no member {member_name}") from None
    if not info.isfile():
        raise GradmetaError(f"{path}: member {member_name} is not a plain file (a link or a device); refusing the "
                            "archive (not the publishers' file?)")
    if info.size > MAX_MEMBER_BYTES:
        raise GradmetaError(f"{path}: {member_name} declares {info.size} bytes, more than a batch holds")
    member = archive.extractfile(info)
    if member is None:
        raise GradmetaError(f"{path}: {title} archive has no member {member_name}")
    batch = BatchUnpickler(member, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or labels_key not in batch:
        raise GradmetaError(f"{path}: {member_name} is not a {title} batch (no data and {labels_key.decode()})")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[labels_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or labels.ndim != 1 or len(labels) != len(data):
        raise GradmetaError(f"{path}: {title} batch {member_name} has data {data.shape} and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise GradmetaError(f"{path}: {title} batch {member_name} has labels outside 0..{classes - 1}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@dataclass(frozen=True)
class CifarLayout:
    """One CIFAR archive's layout: its members per split, where its labels are, how many classes."""

    title: str
    archive: str  # its key in ARCHIVES (the published checksum)
    splits: dict[str, tuple[str, ...]]
    labels_key: bytes
    classes: int


CIFAR10 = CifarLayout("CIFAR-10", "cifar10", SPLITS, b"labels", 10)
CIFAR100 = CifarLayout("CIFAR-100", "cifar100", CIFAR100_SPLITS, b"fine_labels", 100)


def _read_split(layout: CifarLayout, path: str | os.PathLike[str], split: str,
                verify: bool) -> tuple[np.ndarray, np.ndarray]:
    if split not in layout.splits:
        raise GradmetaError(f"{layout.title} has the splits {', '.join(layout.splits)}, not {split!r}")
    if verify:
        verify_published(path, layout.archive)
    try:
        with tarfile.open(path, "r:gz") as archive:
            batches = [_read_batch(archive, path, name, layout.labels_key, layout.title, layout.classes)
                       for name in layout.splits[split]]
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise GradmetaError(f"{path}: not a readable {layout.title} archive ({exc})") from None
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def read_cifar10(path: str | os.PathLike[str], split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images RGB uint8 (N, 32, 32, 3) and labels int64 (N,), 0-9, of one split: ``train`` (the five
    training batches, in order: 50,000 images) or ``test`` (the test batch: 10,000).

    Every batch is unpickled by :class:`BatchUnpickler` (no code runs, whatever the archive holds);
    ``verify``: refuse an archive whose MD5 is not the published one (``False`` reads a modified copy).
    """
    return _read_split(CIFAR10, path, split, verify)


def read_cifar100(path: str | os.PathLike[str], split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images RGB uint8 (N, 32, 32, 3) and fine labels int64 (N,), 0-99, of one split of CIFAR-100: ``train``
    (50,000) or ``test`` (10,000), unpickled by :class:`BatchUnpickler`; ``verify`` as in :func:`read_cifar10`."""
    return _read_split(CIFAR100, path, split, verify)


def read_cifar10_test(path: str | os.PathLike[str], verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Test images in grey uint8 (N, 28, 28): RGB to luminance, 32 to 28 by area; labels int64 (N,), 0-9
    (the ``cifar10_grey`` source)."""
    rgb, labels = read_cifar10(path, "test", verify)
    grey = rgb_to_grey(rgb)
    images = np.stack([area_resize(img, IMAGE_SIZE) for img in grey]) if len(grey) else np.empty((0, 28, 28), np.uint8)
    return images, labels
