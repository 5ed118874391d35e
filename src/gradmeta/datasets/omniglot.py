"""Reader for the Omniglot archives (``images_background.zip``, ``images_evaluation.zip``).

Each archive holds ``<set>/<alphabet>/<character>/<drawing>.png``: 105x105, black strokes on white.
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
from PIL import Image, UnidentifiedImageError

from gradmeta.core.concepts import IMAGE_SIZE
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.imageops import area_resize


def list_omniglot(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Sorted (member name, character key) pairs of every drawing in an Omniglot zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.lower().endswith(".png"))
    except zipfile.BadZipFile:
        raise GradmetaError(f"{path}: not a valid zip archive (truncated or corrupted)") from None
    pairs = []
    for name in names:
        parts = name.split("/")
        if len(parts) < 3:
            raise GradmetaError(f"{path}: unexpected member {name}, expected <alphabet>/<character>/<file>.png")
        pairs.append((name, "/".join(parts[-3:-1])))
    return pairs


def read_omniglot(path: str | os.PathLike[str], members: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Images uint8 (N, 28, 28), inverted to white on black and area-resized, and each one's
    ``alphabet/character`` key, for the given members (all drawings, sorted, when None)."""
    pairs = list_omniglot(path)
    keys = dict(pairs)
    if members is None:
        members = [name for name, _ in pairs]
    images = np.empty((len(members), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with zipfile.ZipFile(path) as archive:
        for i, name in enumerate(members):
            try:
                with Image.open(io.BytesIO(archive.read(name))) as img:
                    grey = np.asarray(img.convert("L"), dtype=np.uint8)
            except (UnidentifiedImageError, OSError, zipfile.BadZipFile) as exc:
                raise GradmetaError(f"{path}: cannot decode {name} ({exc})") from None
            images[i] = area_resize(255 - grey, IMAGE_SIZE)
    return images, [keys[m] for m in members]
