"""The prepared-data contract: ``data/prepared/<concept>.npz``.

Arrays: ``images`` uint8 (N, H, W) grey or (N, H, W, 3) RGB in the pipeline's geometry
(:mod:`gradmeta.geometry`; the paper's digits: (N, 28, 28), white strokes on black; the shape is the
file's statement of its geometry); ``labels`` int64 (N,), the class in
the concept's own label space or -1; ``split`` str (N,), the source's split name of each image;
``source_index`` int64 (N,), the image's position in its source. Scalars: ``concept``, ``source``
(the source's name: ``emnist_digits``, ``synthetic_digits``, ``npz``, ...), ``kind`` (one of
:data:`KINDS`) and ``provenance`` (JSON: a one-line ``description`` plus the archives and their
checksums, the generator and seed, or the user's path and its sha256).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradmeta.core.atomic import write_bytes
from gradmeta.core.concepts import KINDS, MAX_IMAGES
from gradmeta.core.errors import GradmetaError
from gradmeta.core.jsontext import json_object
from gradmeta.core.npzfile import NpzArchive
from gradmeta.core.params import shown
from gradmeta.geometry import MAX_SIDE, Geometry, geometry_of

FORMAT = "gradmeta.prepared/2"
ARRAYS = ("format", "concept", "source", "kind", "provenance", "images", "labels", "split", "source_index")


@dataclass
class PreparedData:
    """Images of one concept with labels, split names and a record of where they came from."""

    concept: str
    source: str
    kind: str
    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    source_index: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        n = len(self.images)
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W) or (N, H, W, 3), got {self.images.dtype}")
        geometry_of(self.images)  # a ValueError for another shape
        if not 0 < self.images.shape[1] <= MAX_SIDE or not 0 < self.images.shape[2] <= MAX_SIDE:
            raise ValueError(f"images of {self.images.shape[2]}x{self.images.shape[1]} pixels; at most {MAX_SIDE} a side")
        for name in ("labels", "split", "source_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.source_index = np.asarray(self.source_index, dtype=np.int64)
        self.split = np.asarray(self.split, dtype=np.str_)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def geometry(self) -> Geometry:
        """The images' (height, width, channels)."""
        return geometry_of(self.images)

    def select(self, split: str) -> PreparedData:
        """The subset of images whose split name is ``split``."""
        mask = self.split == split
        return PreparedData(self.concept, self.source, self.kind, self.images[mask], self.labels[mask],
                            self.split[mask], self.source_index[mask], dict(self.provenance))


def save_prepared(path: str | os.PathLike[str], data: PreparedData) -> None:
    """Write ``data`` as an uncompressed npz, atomically; same data gives the same bytes."""
    buf = io.BytesIO()
    np.savez(buf, format=np.array(FORMAT), concept=np.array(data.concept), source=np.array(data.source),
             kind=np.array(data.kind), provenance=np.array(json.dumps(data.provenance, sort_keys=True)), images=data.images,
             labels=data.labels, split=data.split, source_index=data.source_index)
    write_bytes(path, buf.getvalue())


STRINGS = ("format", "concept", "source", "kind", "provenance")  # the scalar string members
MAX_PROVENANCE = 1 << 20  # characters of the provenance JSON (a few hundred for a built-in concept)


def _one_string(shape: tuple[int, ...], dtype: np.dtype) -> None:
    """The declared header of a scalar string member: a 0-d unicode array of at most MAX_PROVENANCE characters."""
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_PROVENANCE:
        raise GradmetaError(f"a scalar string of at most {MAX_PROVENANCE} characters, got {dtype} {shape}")


def _check_declared(npz: NpzArchive, p: Path) -> None:
    """Refuse, from the headers alone, a prepared file whose arrays cannot be one concept's: images uint8
    (N, H, W) or (N, H, W, 3) with 1 <= N <= MAX_IMAGES and sides up to MAX_SIDE, and labels, split and
    source_index of length N."""
    shape, dtype = npz.header("images")
    if (dtype != np.uint8 or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 3)
            or not 0 < shape[0] <= MAX_IMAGES or not all(0 < side <= MAX_SIDE for side in shape[1:3])):
        raise GradmetaError(f"{p}: images declared as {dtype} {shape}; a prepared concept holds uint8 (N, H, W) or "
                            f"(N, H, W, 3) with 1 <= N <= {MAX_IMAGES} and H, W <= {MAX_SIDE}")
    for name in ("labels", "split", "source_index"):
        other, other_dtype = npz.header(name)
        if other != (shape[0],) or (name == "split" and (other_dtype.kind != "U" or other_dtype.itemsize > 4 * 16)):
            raise GradmetaError(f"{p}: {name} declared as {other_dtype} {other} for {shape[0]} images")
    for name in STRINGS:
        try:
            _one_string(*npz.header(name))
        except GradmetaError as exc:
            raise GradmetaError(f"{p}: {name} must be {exc}") from None


def load_prepared(path: str | os.PathLike[str]) -> PreparedData:
    """Read a prepared npz, failing with one line that names the file if it is missing or damaged."""
    p = Path(path)
    with NpzArchive(p, "prepared data file", "run the download stage first") as npz:
        missing = set(ARRAYS) - set(npz.names)
        if missing:
            raise GradmetaError(f"{p}: not a gradmeta prepared file, missing arrays {sorted(missing)}")
        _check_declared(npz, p)
        if str(npz.array("format")) != FORMAT:
            raise GradmetaError(f"{p}: expected format {FORMAT}, got {shown(str(npz.array('format')))}")
        arrays = {name: npz.array(name) for name in ARRAYS}
    try:
        return PreparedData(str(arrays["concept"]), str(arrays["source"]), str(arrays["kind"]), arrays["images"],
                            arrays["labels"],
                            arrays["split"], arrays["source_index"],
                            json_object(str(arrays["provenance"]), f"{p}: provenance"))
    except ValueError as exc:
        raise GradmetaError(f"{p}: inconsistent prepared arrays ({exc})") from None
