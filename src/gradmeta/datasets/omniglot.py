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
from gradmeta.datasets.verify import checked_member, verify_published

MAX_PIXELS = 4096 * 4096  # Omniglot drawings are 105x105
MAX_PNG_BYTES = 1 << 24


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
    if not pairs:
        raise GradmetaError(f"{path}: no PNG drawings in the archive (not an Omniglot archive?)")
    return pairs


def read_omniglot(path: str | os.PathLike[str], members: list[str] | None = None,
                  verify: bool = True) -> tuple[np.ndarray, list[str]]:
    """Images uint8 (N, 28, 28), inverted to white on black and area-resized, and each one's
    ``alphabet/character`` key, for the given members (all drawings, sorted, when None).
    ``verify``: refuse an archive whose MD5 is not one of the two published ones."""
    if verify:
        verify_published(path, "omniglot_background", "omniglot_evaluation")
    pairs = list_omniglot(path)
    keys = dict(pairs)
    if members is None:
        members = [name for name, _ in pairs]
    images = np.empty((len(members), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with zipfile.ZipFile(path) as archive:
        for i, name in enumerate(members):
            images[i] = area_resize(255 - _decode(archive, name, path), IMAGE_SIZE)
    return images, [keys[m] for m in members]


def _decode(archive: zipfile.ZipFile, name: str, path: str | os.PathLike[str]) -> np.ndarray:
    """One drawing as grey uint8, its declared size checked before it is decoded."""
    checked_member(archive, name, path, MAX_PNG_BYTES)
    try:
        with Image.open(io.BytesIO(archive.read(name))) as img:
            if img.width * img.height > MAX_PIXELS:
                raise GradmetaError(f"{path}: {name} declares {img.width}x{img.height} pixels, more than the "
                                    f"{MAX_PIXELS} a drawing may have")
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, zipfile.BadZipFile, Image.DecompressionBombError) as exc:
        raise GradmetaError(f"{path}: cannot decode {name} ({exc})") from None
