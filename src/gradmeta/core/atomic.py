"""Write outputs completely or not at all: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gradmeta.core.errors import GradmetaError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The caller writes the whole file to the yielded path. On any exception the temporary file is
    removed and ``path`` is left untouched. Temporary files are named ``.<name>.<random>.tmp``: a
    process killed mid-write (kill -9) can leave one, so those of the same ``path`` are removed before
    a new write starts, and ``.dvcignore`` keeps DVC from counting one into an output folder's hash.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise cannot_write(target, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: one line, nothing half-written
        tmp.unlink(missing_ok=True)
        raise cannot_write(target, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cannot_write(target: Path, exc: OSError) -> GradmetaError:
    """The one-line error for an output that cannot be written (no space, no permission, ...)."""
    return GradmetaError(f"{target}: cannot write it ({exc.strerror or type(exc).__name__}"
                         f"{f': {exc.filename}' if exc.filename and str(exc.filename) != str(target) else ''}); "
                         "nothing was written")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON with sorted keys and a final newline."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def round_floats(obj: Any, digits: int = 4) -> Any:
    """Return ``obj`` with every float rounded to ``digits`` decimals (nested dicts and lists too)."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj
