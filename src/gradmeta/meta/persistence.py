"""Saving and loading fitted meta classifiers (``models/meta/meta.joblib``), in one place."""

from __future__ import annotations

import os
from pathlib import Path

import joblib

from gradmeta.core.atomic import atomic_path
from gradmeta.core.errors import GradmetaError
from gradmeta.meta.fitting import FittedMeta


def save_fitted(path: str | os.PathLike[str], fitted: FittedMeta) -> None:
    """Write ``fitted`` atomically (joblib, compressed); the same fit gives the same bytes."""
    with atomic_path(path) as tmp:
        joblib.dump(fitted, tmp, compress=3)


def load_fitted(path: str | os.PathLike[str]) -> FittedMeta:
    """Read what :func:`save_fitted` wrote; a missing or unreadable file is a GradmetaError.

    The file is a pickle: load only files you made or trust.
    """
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: meta classifiers not found (run the meta stage first)")
    try:
        fitted = joblib.load(p)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged or foreign file
        raise GradmetaError(f"{p}: not a readable meta classifier file ({type(exc).__name__})") from None
    if not isinstance(fitted, FittedMeta):
        raise GradmetaError(f"{p}: not a gradmeta meta classifier file (holds a {type(fitted).__name__})")
    return fitted
