"""The user's own data as a concept: an ``npz``, ``idx`` files or a ``folder`` of PNG/JPEG images.

- ``npz``: array ``images`` (N, H, W) grey or (N, H, W, 3) colour, uint8 or float in [0, 1], and
  optionally ``labels`` (N,) integers. Read without pickle.
- ``idx``: an IDX images file (gzipped or not; grey (N, H, W) or colour (N, H, W, 3)), or a folder
  holding one IDX file whose name contains ``images`` and optionally one whose name contains ``labels``.
- ``folder``: every ``.png``/``.jpg``/``.jpeg`` below the folder, in sorted path order; when every
  image sits in a first-level subfolder, the subfolders (sorted) are the classes, as in an
  image-folder data set; otherwise there are no labels.

Every image becomes white-on-black uint8 28x28 the way the built-in readers do it: colour to grey
by ITU-R 601 luminance (transparent pixels show the background), optionally inverted (``invert``:
black-on-white drawings), padded to a square with the background, then area-resized to 28x28.
Provenance: the path and a sha256 of its content (of each file, for a folder).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from gradmeta.core.concepts import IMAGE_SIZE
from gradmeta.core.errors import GradmetaError
from gradmeta.core.npzfile import read_npz
from gradmeta.datasets.assemble import Built, Part, stream_rng
from gradmeta.datasets.download import file_checksums
from gradmeta.datasets.imageops import area_resize, rgb_to_grey, subsample_indices
from gradmeta.datasets.mnist import read_idx_images

if TYPE_CHECKING:
    from gradmeta.datasets.config import ConceptSpec, DataConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PIXELS = 8192 * 8192  # per image: refuse decompression bombs before decoding


def to_concept_image(image: np.ndarray, invert: bool, where: str) -> np.ndarray:
    """One image (H, W) grey or (H, W, 3) colour, uint8 or float in [0, 1], as uint8 (28, 28) white on black."""
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating) or not np.isfinite(image).all() \
                or image.min() < 0 or image.max() > 1:
            raise GradmetaError(f"{where}: images must be uint8, or floats in [0, 1]; got {image.dtype}")
        image = np.rint(image * 255.0).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = rgb_to_grey(image)
    if image.ndim != 2:
        raise GradmetaError(f"{where}: an image of shape {image.shape}; expected (H, W) grey or (H, W, 3) colour")
    if invert:
        image = 255 - image
    h, w = image.shape
    if h != w:
        side = max(h, w)
        square = np.zeros((side, side), dtype=np.uint8)  # the background is black once inverted
        square[(side - h) // 2: (side - h) // 2 + h, (side - w) // 2: (side - w) // 2 + w] = image
        image = square
    return image if image.shape == (IMAGE_SIZE, IMAGE_SIZE) else area_resize(image, IMAGE_SIZE)


def _convert_all(images: np.ndarray, invert: bool, where: str) -> np.ndarray:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3) or len(images) == 0:
        raise GradmetaError(f"{where}: images of shape {images.shape}; expected (N, H, W) grey or (N, H, W, 3) "
                            "colour with N >= 1")
    return np.stack([to_concept_image(img, invert, f"{where}[{i}]") for i, img in enumerate(images)])


def _check_labels(labels: np.ndarray | None, n: int, where: str) -> np.ndarray | None:
    if labels is None:
        return None
    if labels.ndim != 1 or len(labels) != n:
        raise GradmetaError(f"{where}: {len(labels) if labels.ndim else 0} labels (shape {labels.shape}) for {n} images")
    if not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise GradmetaError(f"{where}: labels must be integers >= 0, got {labels.dtype}")
    return labels.astype(np.int64)


def read_npz_concept(path: Path, invert: bool) -> tuple[np.ndarray, np.ndarray | None, dict]:
    arrays = read_npz(path, "npz file", "check data.user_concepts.<name>.path")
    if "images" not in arrays:
        raise GradmetaError(f"{path}: no array 'images' (found {', '.join(sorted(arrays)) or 'none'})")
    images = _convert_all(arrays["images"], invert, f"{path}: images")
    labels = _check_labels(arrays.get("labels"), len(images), f"{path}: labels")
    return images, labels, {"path": str(path), "sha256": file_checksums(path)[1]}


def _idx_files(path: Path) -> tuple[Path, Path | None]:
    if path.is_file():
        return path, None
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if "images" in p.name]
    labels = [p for p in files if "labels" in p.name]
    if len(images) != 1 or len(labels) > 1:
        raise GradmetaError(f"{path}: expected one IDX file named '*images*' and at most one '*labels*', found "
                            f"{[p.name for p in images]} and {[p.name for p in labels]}")
    return images[0], (labels[0] if labels else None)


def read_idx_concept(path: Path, invert: bool) -> tuple[np.ndarray, np.ndarray | None, dict]:
    images_path, labels_path = _idx_files(path)
    raw, labels = read_idx_images(images_path, labels_path)
    files = [p for p in (images_path, labels_path) if p is not None]
    return _convert_all(raw, invert, str(images_path)), labels, {
        "path": str(path), "files": {p.name: file_checksums(p)[1] for p in files}}


def _decode(path: Path, invert: bool) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise GradmetaError(f"{path}: {img.width}x{img.height} pixels, more than the {MAX_PIXELS} accepted")
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if invert else (0, 0, 0, 255))
                img = Image.alpha_composite(background, rgba)
            array = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise GradmetaError(f"{path}: cannot decode the image ({str(exc).splitlines()[0] or type(exc).__name__})") from None
    return to_concept_image(array, invert, str(path))


def read_folder_concept(path: Path, invert: bool) -> tuple[np.ndarray, np.ndarray | None, dict]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise GradmetaError(f"{path}: no images (.png, .jpg, .jpeg) in the folder")
    images = np.stack([_decode(p, invert) for p in files])
    relative = [p.relative_to(path) for p in files]
    labels, classes = None, None
    if all(len(r.parts) == 2 for r in relative):
        classes = sorted({r.parts[0] for r in relative})
        labels = np.array([classes.index(r.parts[0]) for r in relative], dtype=np.int64)
    digest = hashlib.sha256()
    for p, r in zip(files, relative, strict=True):
        digest.update(f"{file_checksums(p)[1]}  {r.as_posix()}\n".encode())
    record = {"path": str(path), "sha256": digest.hexdigest(), "files": len(files)}
    if classes is not None:
        record["classes"] = classes
    return images, labels, record


READERS = {"npz": read_npz_concept, "idx": read_idx_concept, "folder": read_folder_concept}


def build_user(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """The concept's parts: a seeded shuffle gives ``train`` images to the train split (when the concept
    has one) and then ``test`` images (None = the rest) to the test split; labels -1 when the data have none."""
    path = Path(spec.path)
    where = f"{cfg.params_file}: data.user_concepts.{spec.name}.path"
    if not path.exists():
        raise GradmetaError(f"{where}: {path} does not exist")
    if spec.source == "npz" and not path.is_file():
        raise GradmetaError(f"{where}: {path} is not a file")
    if spec.source == "folder" and not path.is_dir():
        raise GradmetaError(f"{where}: {path} is not a folder")
    images, labels, record = READERS[spec.source](path, spec.invert)
    if labels is None:
        labels = np.full(len(images), -1, dtype=np.int64)
    order = stream_rng(cfg.seed, f"{spec.name}/split").permutation(len(images))
    parts = []
    if spec.has_train:  # a number: DataConfig refuses train: null for user data
        if spec.train >= len(images):
            raise GradmetaError(f"{where}: {len(images)} images are too few for {spec.train} train images "
                                "and a test split")
        train = np.sort(order[: spec.train])
        parts.append(Part("train", images[train], labels[train], train))
        order = order[spec.train:]
    rest = np.sort(order)
    test = rest[subsample_indices(len(rest), spec.test, stream_rng(cfg.seed, f"{spec.name}/test"))]
    parts.append(Part("test", images[test], labels[test], test))
    return Built(parts, {"user_data": {"format": spec.source, **record}, "seed": cfg.seed})
