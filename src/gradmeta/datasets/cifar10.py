"""Reader for the CIFAR-10 python archive (``cifar-10-python.tar.gz``): the test batch, made grey."""

from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np

from gradmeta.core.concepts import IMAGE_SIZE
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.imageops import area_resize, rgb_to_grey

TEST_MEMBER = "cifar-10-batches-py/test_batch"


def read_cifar10_test(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Test images uint8 (N, 28, 28): RGB to luminance, 32 to 28 by area; labels int64 (N,), 0-9."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            member = archive.extractfile(TEST_MEMBER)
            if member is None:
                raise KeyError(TEST_MEMBER)
            # The archive was verified against its published checksum before it is read here.
            batch = pickle.load(member, encoding="bytes")
    except KeyError:
        raise GradmetaError(f"{path}: CIFAR-10 archive has no member {TEST_MEMBER}") from None
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise GradmetaError(f"{path}: not a readable CIFAR-10 archive ({exc})") from None
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise GradmetaError(f"{path}: CIFAR-10 test batch has data {data.shape} and {len(labels)} labels")
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    grey = rgb_to_grey(rgb)
    images = np.stack([area_resize(img, IMAGE_SIZE) for img in grey]) if len(grey) else np.empty((0, 28, 28), np.uint8)
    return images, labels
