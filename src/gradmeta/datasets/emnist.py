"""Reader for the EMNIST archive (``gzip.zip``: gzipped IDX files inside a zip).

EMNIST stores each image transposed relative to MNIST; :func:`read_emnist` returns them upright.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
from typing import BinaryIO

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.verify import MAX_MEMBER_BYTES, checked_member, verify_published

SUBSETS = ("digits", "letters")
SPLITS = ("train", "test")


MAX_IDX_DIMS = 4
READ_BLOCK = 1 << 22


def read_idx_header(stream: BinaryIO, name: str = "IDX data", max_bytes: int = MAX_MEMBER_BYTES) -> tuple[int, ...]:
    """The shape an (uncompressed) IDX stream of unsigned bytes declares; the stream is left at its data.

    Refused unless it has 1 to 4 dimensions and at most ``max_bytes`` of data."""
    header = stream.read(4)
    if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] != 0x08:
        raise GradmetaError(f"{name}: not an IDX file of unsigned bytes (header {header!r})")
    ndim = header[3]
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise GradmetaError(f"{name}: IDX header declares {ndim} dimensions, expected 1 to {MAX_IDX_DIMS}")
    dims = stream.read(4 * ndim)
    if len(dims) != 4 * ndim:
        raise GradmetaError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", dims)
    count = int(np.prod(shape, dtype=np.int64))
    if count > max_bytes:
        raise GradmetaError(f"{name}: IDX header declares shape {shape} ({count} bytes), more than the "
                            f"{max_bytes} a reader accepts")
    return shape


def read_idx_bytes(stream: BinaryIO, count: int, name: str = "IDX data") -> bytes:
    """Exactly ``count`` bytes of IDX data from ``stream``, read in blocks (a GradmetaError if fewer)."""
    payload = bytearray()
    while len(payload) < count and (block := stream.read(min(READ_BLOCK, count - len(payload)))):
        payload += block
    if len(payload) != count:
        raise GradmetaError(f"{name}: truncated IDX data ({len(payload)} of {count} bytes)")
    return bytes(payload)


def read_idx(stream: BinaryIO, name: str = "IDX data", max_bytes: int = MAX_MEMBER_BYTES) -> np.ndarray:
    """Parse an (uncompressed) IDX stream of unsigned bytes into an array of its declared shape.

    The declared shape is checked (1 to 4 dimensions, at most ``max_bytes`` of data) before any
    allocation, and the data are read in blocks, so a lying header costs no memory.
    """
    shape = read_idx_header(stream, name, max_bytes)
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(read_idx_bytes(stream, count, name), dtype=np.uint8).reshape(shape)


def _read_member(archive: zipfile.ZipFile, member: str, path: str) -> np.ndarray:
    candidates = [n for n in archive.namelist() if n.endswith("/" + member) or n == member]
    if not candidates:
        raise GradmetaError(f"{path}: EMNIST archive has no member {member}")
    checked_member(archive, candidates[0], path)
    try:
        with archive.open(candidates[0]) as raw, gzip.GzipFile(fileobj=raw) as stream:
            return read_idx(stream, f"{path}:{candidates[0]}")
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise GradmetaError(f"{path}: cannot read {candidates[0]} ({exc})") from None


def read_emnist(path: str | os.PathLike[str], subset: str, split: str,
                verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) upright, white on black, and labels int64 (N,) of one EMNIST split.

    Digits labels are 0-9; letters labels are 0-25 for a-z (EMNIST's 1-26 shifted down by one,
    upper and lower case merged as in EMNIST). ``verify``: refuse an archive whose MD5 is not
    the published one (``False`` reads a modified copy).
    """
    if subset not in SUBSETS or split not in SPLITS:
        raise GradmetaError(f"unknown EMNIST subset/split {subset}/{split}, expected one of "
                            f"{', '.join(SUBSETS)} / {', '.join(SPLITS)}")
    if verify:
        verify_published(path, "emnist")
    try:
        with zipfile.ZipFile(path) as archive:
            images = _read_member(archive, f"emnist-{subset}-{split}-images-idx3-ubyte.gz", str(path))
            labels = _read_member(archive, f"emnist-{subset}-{split}-labels-idx1-ubyte.gz", str(path))
    except zipfile.BadZipFile:
        raise GradmetaError(f"{path}: not a valid zip archive (truncated or corrupted)") from None
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise GradmetaError(f"{path}: EMNIST {subset}/{split} has images {images.shape} and labels {labels.shape}")
    images = np.ascontiguousarray(images.transpose(0, 2, 1))
    labels = labels.astype(np.int64)
    if subset == "letters":
        labels = labels - 1
    return images, labels
