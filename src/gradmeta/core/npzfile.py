"""Reading npz files safely: ``allow_pickle=False`` (no object arrays, so nothing in the file runs),
every array loaded, and one error line naming the file when it is missing or damaged."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from gradmeta.core.errors import GradmetaError


def read_npz(path: str | os.PathLike[str], what: str, missing_hint: str) -> dict[str, np.ndarray]:
    """Every array of the npz at ``path``; ``what`` names the file's kind in errors and
    ``missing_hint`` says what makes it (e.g. 'run the meta stage first')."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: {what} not found ({missing_hint})")
    try:
        with np.load(p, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise GradmetaError(f"{p}: not a readable {what} (truncated, corrupted or foreign: "
                            f"{str(exc).splitlines()[0]})") from None
