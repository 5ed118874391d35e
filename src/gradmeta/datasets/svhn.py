"""Reader for SVHN's cropped-digit test set (``test_32x32.mat``, MATLAB v5): ``X`` uint8 (32, 32, 3, N) and
``y`` (N, 1) with the digits 1-10, where 10 stands for the digit 0.

The file is parsed by SciPy's MAT-file v5 reader, which reads typed arrays and runs no code (a MAT file
holds no code to run); its header is checked first (a v7.3 file is HDF5, and refused with a clear line),
then every array's shape and range.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.verify import MAX_MEMBER_BYTES, verify_published

HEADER_BYTES = 128
V5_VERSION = 0x0100


def _check_header(path: str | os.PathLike[str]) -> None:
    """Refuse a file that is not a MATLAB v5 MAT-file: 128-byte header, text starting ``MATLAB <version>
    MAT-file``, version 0x0100 in the byte order its ``IM``/``MI`` mark says (v7.3 says 0x0200)."""
    size = os.path.getsize(path)
    if size > MAX_MEMBER_BYTES:
        raise GradmetaError(f"{path}: {size} bytes, more than the {MAX_MEMBER_BYTES} an SVHN .mat may have")
    with open(path, "rb") as fh:
        header = fh.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or not header.startswith(b"MATLAB ") or b"MAT-file" not in header[:20]:
        raise GradmetaError(f"{path}: not a MATLAB v5 MAT-file (no 'MATLAB 5.0 MAT-file' header; truncated, or "
                            "another format)")
    order = {b"IM": "little", b"MI": "big"}.get(header[126:128])
    version = int.from_bytes(header[124:126], order) if order else None
    if version != V5_VERSION:
        raise GradmetaError(f"{path}: MAT-file version {version if version is None else hex(version)} in its header; "
                            "only v5 (0x0100) is read (a v7.3 file is HDF5: save it with -v7 or -v6)")


def read_svhn(path: str | os.PathLike[str], verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images RGB uint8 (N, 32, 32, 3) and labels int64 (N,), the digit shown (0-9; the file's 10 becomes 0).
    ``verify``: refuse a file whose MD5 is not the published one of ``test_32x32.mat``."""
    if verify:
        verify_published(path, "svhn_test")
    _check_header(path)
    from scipy.io import loadmat  # noqa: PLC0415 - SciPy's io only where a .mat is read
    from scipy.io.matlab import MatReadError  # noqa: PLC0415

    try:
        arrays = loadmat(path, variable_names=["X", "y"], mat_dtype=False, squeeze_me=False)
    except (MatReadError, ValueError, OSError, EOFError, TypeError, zlib.error, MemoryError) as exc:
        raise GradmetaError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc})") from None
    if "X" not in arrays or "y" not in arrays:
        raise GradmetaError(f"{path}: the .mat holds no {' and no '.join(k for k in ('X', 'y') if k not in arrays)} "
                            "array (SVHN's test_32x32.mat holds X and y)")
    x, y = arrays["X"], np.asarray(arrays["y"])
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise GradmetaError(f"{path}: array X is {x.dtype} {x.shape}; SVHN's is uint8 (32, 32, 3, N)")
    if y.shape not in ((x.shape[3], 1), (x.shape[3],)) or y.dtype.kind not in "iuf":
        raise GradmetaError(f"{path}: array y is {y.dtype} {y.shape}; SVHN's is ({x.shape[3]}, 1), one digit per image")
    labels = y.reshape(-1).astype(np.int64)
    if len(labels) and (labels.min() < 1 or labels.max() > 10 or not np.array_equal(labels, y.reshape(-1))):
        raise GradmetaError(f"{path}: array y holds values outside the digits 1-10")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), labels % 10
