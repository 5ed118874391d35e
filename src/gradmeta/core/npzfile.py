"""Reading npz files safely: only the arrays asked for, each header checked before anything is
allocated, ``allow_pickle=False`` (no object arrays, so nothing in the file runs), and one error line
naming the file (and the member) when it is missing, damaged, foreign or too large.

:class:`NpzArchive` opens the file and reads members one at a time (or row blocks of one, for a
reader that converts in bounded memory); :func:`read_npz` reads a fixed set of names. Members the
caller does not ask for are never inflated.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, KeysView
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from gradmeta.core.errors import GradmetaError

# Declared bytes one member may have. Above what any file the pipeline writes holds at paper scale
# (KNN's bank of every EMNIST train image's 1024 float64 features: 2 GB); a header beyond it is a
# damaged or hostile file and is refused before reading.
MAX_ARRAY_BYTES = 1 << 33
READ_BLOCK = 1 << 20  # bytes read at a time into an array's own memory
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class NpzArchive:
    """An npz file opened for reading named arrays (``with NpzArchive(...) as npz: npz.array('x')``).

    ``what`` names the file's kind in errors, ``missing_hint`` says what makes it (e.g. 'run the meta
    stage first'), ``max_bytes`` caps the declared size of each member read.
    """

    def __init__(self, path: str | os.PathLike[str], what: str, missing_hint: str,
                 max_bytes: int = MAX_ARRAY_BYTES):
        self.path, self.what, self.max_bytes = Path(path), what, max_bytes
        if not self.path.is_file():
            raise GradmetaError(f"{self.path}: {what} not found ({missing_hint})")
        try:
            self._zip = zipfile.ZipFile(self.path)
            infos = self._zip.infolist()
        except (*_READ_ERRORS,) as exc:
            raise self.damaged(f"not a zip archive: {_first_line(exc)}") from None
        self._infos = {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def names(self) -> KeysView[str]:
        """The array names the file holds, in file order (nothing is read; ``in`` is a dict lookup)."""
        return self._infos.keys()

    def damaged(self, detail: str) -> GradmetaError:
        return GradmetaError(f"{self.path}: not a readable {self.what} ({detail})")

    def _open(self, name: str) -> tuple[IO[bytes], tuple[int, ...], bool, np.dtype]:
        """The member's stream positioned at its data, and its declared shape, order and dtype."""
        info = self._infos.get(name)
        if info is None:
            raise self.damaged(f"no array '{name}'; it holds {', '.join(sorted(self._infos)) or 'none'}")
        fp = self._zip.open(info)
        try:
            version = np.lib.format.read_magic(fp)
            if version not in _HEADER_READERS:
                raise ValueError(f"npy format version {version}")
            shape, fortran, dtype = _HEADER_READERS[version](fp)
            if dtype.hasobject:
                raise ValueError("it holds Python objects, which are never loaded")
            if any(not isinstance(d, int) or d < 0 for d in shape):
                raise ValueError(f"its header declares shape {shape}, with a negative dimension")
            declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if declared > self.max_bytes:
                raise ValueError(f"its header declares shape {shape} of {dtype} ({declared} bytes), more than "
                                 f"the {self.max_bytes} accepted")
            if declared > info.file_size:
                raise ValueError(f"its header declares {declared} bytes but the member holds {info.file_size}")
        except (*_READ_ERRORS,) as exc:
            fp.close()
            raise self.damaged(f"array '{name}': {_first_line(exc)}") from None
        return fp, tuple(shape), fortran, dtype

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The declared shape and dtype of ``name`` (checked as :meth:`array` checks them; no data read)."""
        fp, shape, _, dtype = self._open(name)
        fp.close()
        return shape, dtype

    def array(self, name: str, expect: Callable[[tuple[int, ...], np.dtype], None] | None = None) -> np.ndarray:
        """The array ``name``, read after its header passed the checks and ``expect(shape, dtype)``, the
        caller's own check of the declared shape and dtype (it raises to refuse), in one opening."""
        fp, shape, fortran, dtype = self._open(name)
        with fp:
            if expect is not None:
                expect(shape, dtype)
            array = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
            self._read_into(fp, memoryview(array).cast("B"), name)  # no second, whole-size copy on the way
        return np.ascontiguousarray(array.reshape(shape[::-1]).transpose()) if fortran else array.reshape(shape)

    def row_blocks(self, name: str, rows: int) -> Iterator[np.ndarray]:
        """Blocks of at most ``rows`` leading-axis entries of ``name`` (a C-ordered array of >= 1
        dimension), read one block at a time: memory is bounded by the block, not the array."""
        fp, shape, fortran, dtype = self._open(name)
        with fp:
            if not shape or (fortran and len(shape) > 1):
                raise self.damaged(f"array '{name}' of shape {shape} is not stored row by row "
                                   "(save it C-ordered: np.ascontiguousarray)")
            row_shape = shape[1:]
            row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
            for start in range(0, shape[0], rows):
                n = min(rows, shape[0] - start)
                data = self._read_exact(fp, n * row_bytes, name)
                yield np.frombuffer(data, dtype=dtype).reshape((n, *row_shape))

    def _read_into(self, fp: IO[bytes], out: memoryview, name: str) -> None:
        """Fill ``out`` from ``fp`` a block of :data:`READ_BLOCK` bytes at a time (refused where the member ends early)."""
        for start in range(0, len(out), READ_BLOCK):
            block = self._read_exact(fp, min(READ_BLOCK, len(out) - start), name, start, len(out))
            out[start: start + len(block)] = block

    def _read_exact(self, fp: IO[bytes], size: int, name: str, before: int = 0, total: int | None = None) -> bytes:
        try:
            data = fp.read(size)
        except (*_READ_ERRORS,) as exc:
            raise self.damaged(f"array '{name}': {_first_line(exc)}") from None
        if len(data) != size:
            raise self.damaged(f"array '{name}' is truncated ({before + len(data)} of {total or size} bytes)")
        return data


def read_npz(path: str | os.PathLike[str], what: str, missing_hint: str, names: Iterable[str],
             optional: Iterable[str] = (), max_bytes: int = MAX_ARRAY_BYTES) -> dict[str, np.ndarray]:
    """The arrays ``names`` (each required) and those of ``optional`` the file has, from the npz at
    ``path``; no other member is read. Errors as :class:`NpzArchive`."""
    with NpzArchive(path, what, missing_hint, max_bytes) as npz:
        wanted = [*names, *(n for n in optional if n in npz.names)]
        return {name: npz.array(name) for name in wanted}
