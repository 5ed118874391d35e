"""Readers for IDX files as MNIST and Fashion-MNIST publish them (``*-idx3-ubyte.gz``), gzipped or not."""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.emnist import read_idx
from gradmeta.datasets.verify import MAX_MEMBER_BYTES

GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def open_idx(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """The uncompressed byte stream of an IDX file, gzipped or plain (told by its first bytes).
    Errors while reading (``OSError``, ``EOFError``) become one GradmetaError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: file not found")
    try:
        with open(p, "rb") as raw:
            magic = raw.read(2)
            raw.seek(0)
            if magic == GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw) as stream:
                    yield stream  # type: ignore[misc]
            else:
                yield raw
    except (OSError, EOFError) as exc:
        raise GradmetaError(f"{p}: cannot read the IDX data ({exc})") from None


def read_idx_file(path: str | os.PathLike[str], max_bytes: int = MAX_MEMBER_BYTES) -> np.ndarray:
    """The array of an IDX file of unsigned bytes (gzip-compressed or plain, told by its first bytes).

    The header is checked before anything is allocated (see :func:`read_idx`)."""
    with open_idx(path) as stream:
        return read_idx(stream, str(path), max_bytes)


def read_idx_images(images_path: str | os.PathLike[str],
                    labels_path: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images uint8 (N, H, W) or (N, H, W, 3) as stored, and labels int64 (N,) or None.

    MNIST and Fashion-MNIST store images upright, white (or bright) on black: no transposition."""
    images = read_idx_file(images_path)
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)):
        raise GradmetaError(f"{images_path}: IDX images of shape {images.shape}; expected (N, H, W) grey or "
                            "(N, H, W, 3) colour")
    if labels_path is None:
        return images, None
    labels = read_idx_file(labels_path)
    if labels.ndim != 1 or len(labels) != len(images):
        raise GradmetaError(f"{labels_path}: {labels.shape[0] if labels.ndim else 0} labels (shape {labels.shape}) "
                            f"for {len(images)} images in {images_path}")
    return images, labels.astype(np.int64)
