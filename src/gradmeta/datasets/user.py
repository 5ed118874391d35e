"""The user's own data as a concept: an ``npz``, ``idx`` files or a ``folder`` of PNG/JPEG images.

- ``npz``: array ``images`` (N, H, W) grey or (N, H, W, 3) colour, uint8 or float in [0, 1], and
  optionally ``labels`` (N,) integers. Read without pickle.
- ``idx``: an IDX images file (gzipped or not; grey (N, H, W) or colour (N, H, W, 3)), or a folder
  holding one IDX file whose name contains ``images`` and optionally one whose name contains ``labels``.
- ``folder``: every ``.png``/``.jpg``/``.jpeg`` below the folder, in sorted path order; when every
  image sits in a first-level subfolder, the subfolders (sorted) are the classes, as in an
  image-folder data set; otherwise there are no labels.

Every image is made into the pipeline's geometry (:mod:`gradmeta.geometry`; the paper's: white-on-black
uint8 28x28) the way the built-in readers do it: colour to grey by ITU-R 601 luminance in a grey run, grey
repeated in R, G and B in a colour run (transparent pixels show the background), optionally inverted
(``invert``: black-on-white drawings), padded to the geometry's aspect ratio with the background, then
area-resized.
Provenance: the path and a sha256 of its content (for IDX files and a folder: of the lines
``<sha256 of the file>  <name>``, as ``sha256sum`` prints them, in reading order).

The path is relative to the repository and must resolve inside it (``user_data/`` is the home the
README suggests, tracked with ``dvc add``), unless the concept says ``outside_repo: true``. Every
size is checked on what the file declares before it is read, and images are converted one at a
time (see the caps below), so a small file that declares or inflates to much is refused or read in
bounded memory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from gradmeta.core.concepts import MAX_IMAGES
from gradmeta.core.errors import GradmetaError
from gradmeta.core.npzfile import NpzArchive
from gradmeta.datasets.assemble import Built, Part, stream_rng
from gradmeta.datasets.download import file_checksums
from gradmeta.datasets.emnist import read_idx_bytes, read_idx_header
from gradmeta.datasets.imageops import area_resize, rgb_to_grey, subsample_indices
from gradmeta.datasets.mnist import open_idx, read_idx_file
from gradmeta.geometry import DEFAULT, Geometry

if TYPE_CHECKING:
    from gradmeta.datasets.config import ConceptSpec, DataConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Caps, relative to what a 28x28 concept needs (each is checked on the declared size, before reading):
# - MAX_IMAGES (gradmeta.core.concepts): images in one concept.
# - MAX_IMAGE_SIDE: pixels on each side of one image, which is padded to a square of its longer side
#   (so a 16,777,216 x 1 strip would be a 2^48-pixel square). A 12-megapixel photo (4000x3000) fits; each of the 784
#   output pixels then averages up to 146x146 source pixels, beyond which no detail survives anyway.
#   One image's working memory (RGBA decode, uint8 grey) stays near 100 MB.
# - MAX_SOURCE_BYTES: declared bytes of an npz or IDX images array (4 GiB), read a block at a time.
MAX_IMAGE_SIDE = 4096
MAX_SOURCE_BYTES = 1 << 32
BLOCK_BYTES = 1 << 25  # images read per block from an npz or IDX stream: about 32 MB of source data


def _to_uint8(image: np.ndarray, where: str, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3), uint8 or float in [0, 1] -> uint8 (H, W) for 1 channel or (H, W, 3) for 3: floats
    scaled by 255 and rounded (checked and converted a block of rows at a time), then colour to grey by
    ITU-R 601 luminance or grey to colour by repeating it in R, G and B."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise GradmetaError(f"{where}: an image of shape {image.shape}; expected (H, W) grey or (H, W, 3) colour")
    colour = image.ndim == 3
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise GradmetaError(f"{where}: images must be uint8, or floats in [0, 1]; got {image.dtype}")
        scaled = np.empty(image.shape, dtype=np.uint8)
        step = max(1, BLOCK_BYTES // max(1, image[0].size * 8))
        for start in range(0, len(image), step):
            block = image[start: start + step]
            nan = bool(np.isnan(block).any())
            if nan or np.isinf(block).any():
                what = "NaN" if nan else "infinite values"
                raise GradmetaError(f"{where}: the image holds {what}; images must be uint8, or floats in [0, 1]")
            if block.min() < 0 or block.max() > 1:
                raise GradmetaError(f"{where}: images must be uint8, or floats in [0, 1]; got {image.dtype} from "
                                    f"{float(block.min()):g} to {float(block.max()):g}")
            scaled[start: start + step] = np.rint(block * 255.0).astype(np.uint8)
        image = scaled
    if colour and channels == 1:
        return rgb_to_grey(image)
    if not colour and channels == 3:
        return np.repeat(image[..., None], 3, axis=2)
    return image


def to_concept_image(image: np.ndarray, invert: bool, where: str, geometry: Geometry = DEFAULT) -> np.ndarray:
    """One image (H, W) grey or (H, W, 3) colour, uint8 or float in [0, 1], in ``geometry`` (the paper's: uint8
    (28, 28) white on black): channels as :func:`_to_uint8` makes them, inverted if asked, padded to the
    geometry's aspect ratio with the background (black once inverted), area-resized."""
    image = _to_uint8(image, where, geometry.channels)
    if invert:
        image = 255 - image
    h, w = image.shape[:2]
    target_h, target_w = geometry.height, geometry.width
    if h * target_w != w * target_h:  # pad to the target's aspect ratio, the image centred
        ph, pw = max(h, -(-w * target_h // target_w)), max(w, -(-h * target_w // target_h))
        padded = np.zeros((ph, pw, *image.shape[2:]), dtype=np.uint8)
        padded[(ph - h) // 2: (ph - h) // 2 + h, (pw - w) // 2: (pw - w) // 2 + w] = image
        image = padded
    return image if image.shape[:2] == (target_h, target_w) else area_resize(image, (target_h, target_w))


def _check_declared(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    """Refuse an images array by its declared shape and dtype, before any of it is read."""
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 3) or shape[0] == 0:
        raise GradmetaError(f"{where}: images of shape {shape}; expected (N, H, W) grey or (N, H, W, 3) "
                            "colour with N >= 1")
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise GradmetaError(f"{where}: images must be uint8, or floats in [0, 1]; got {dtype}")
    if shape[0] > MAX_IMAGES:
        raise GradmetaError(f"{where}: {shape[0]} images declared, more than the {MAX_IMAGES} a concept may have")
    if max(shape[1], shape[2]) > MAX_IMAGE_SIDE:
        raise GradmetaError(f"{where}: images of {shape[2]}x{shape[1]} pixels declared; an image may be at most "
                            f"{MAX_IMAGE_SIDE} pixels on a side (it is padded to a square)")


def _block_images(shape: tuple[int, ...], itemsize: int) -> int:
    """Images per streamed block: about BLOCK_BYTES of source data, at least one image."""
    return max(1, BLOCK_BYTES // max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize))


def _convert_blocks(blocks: Iterable[np.ndarray], count: int, invert: bool, where: str,
                    geometry: Geometry) -> np.ndarray:
    """uint8 (count, *geometry.image_shape) from blocks of source images, converted one image at a time."""
    out = np.empty((count, *geometry.image_shape), dtype=np.uint8)
    i = 0
    for block in blocks:
        for image in block:
            out[i] = to_concept_image(image, invert, f"{where}[{i}]", geometry)
            i += 1
    return out


def _check_labels(labels: np.ndarray | None, n: int, where: str) -> np.ndarray | None:
    if labels is None:
        return None
    if labels.ndim != 1 or len(labels) != n:
        raise GradmetaError(f"{where}: {len(labels) if labels.ndim else 0} labels (shape {labels.shape}) for {n} images")
    if not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise GradmetaError(f"{where}: labels must be integers >= 0, got {labels.dtype}")
    return labels.astype(np.int64)


def read_npz_concept(path: Path, invert: bool, geometry: Geometry = DEFAULT) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Only ``images`` and ``labels`` are read (other arrays are never inflated); images a block at a time."""
    with NpzArchive(path, "npz file", "check data.user_concepts.<name>.path", MAX_SOURCE_BYTES) as npz:
        if "images" not in npz.names:
            raise GradmetaError(f"{path}: no array 'images' (found {', '.join(sorted(npz.names)) or 'none'})")
        shape, dtype = npz.header("images")
        where = f"{path}: images"
        _check_declared(shape, dtype, where)
        images = _convert_blocks(npz.row_blocks("images", _block_images(shape, dtype.itemsize)), shape[0],
                                 invert, where, geometry)
        labels = None
        if "labels" in npz.names:
            label_shape, _ = npz.header("labels")
            if label_shape != (shape[0],):
                raise GradmetaError(f"{path}: labels: {label_shape[0] if label_shape else 0} labels (shape "
                                    f"{label_shape}) for {shape[0]} images")
            labels = npz.array("labels")
    labels = _check_labels(labels, len(images), f"{path}: labels")
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


def _idx_image_blocks(stream: BinaryIO, shape: tuple[int, ...], name: str) -> Iterator[np.ndarray]:
    per_image = int(np.prod(shape[1:], dtype=np.int64))
    step = _block_images(shape, 1)
    for start in range(0, shape[0], step):
        n = min(step, shape[0] - start)
        data = read_idx_bytes(stream, n * per_image, name)
        yield np.frombuffer(data, dtype=np.uint8).reshape((n, *shape[1:]))


def read_idx_concept(path: Path, invert: bool, geometry: Geometry = DEFAULT) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The images file is read a block of images at a time; the labels file at most MAX_IMAGES bytes."""
    images_path, labels_path = _idx_files(path)
    where = str(images_path)
    with open_idx(images_path) as stream:
        shape = read_idx_header(stream, where, MAX_SOURCE_BYTES)
        _check_declared(shape, np.dtype(np.uint8), f"{where}: IDX images")
        images = _convert_blocks(_idx_image_blocks(stream, shape, where), shape[0], invert, where, geometry)
    labels = None
    if labels_path is not None:
        labels = read_idx_file(labels_path, max_bytes=MAX_IMAGES)
        if labels.ndim != 1 or len(labels) != len(images):
            raise GradmetaError(f"{labels_path}: {labels.shape[0] if labels.ndim else 0} labels (shape "
                                f"{labels.shape}) for {len(images)} images in {images_path}")
        labels = labels.astype(np.int64)
    sha = {p.name: file_checksums(p)[1] for p in (images_path, labels_path) if p is not None}
    return images, labels, {"path": str(path), "sha256": _files_digest(sha), "files": sha}


def _files_digest(sha: dict[str, str]) -> str:
    """One sha256 over several files' sha256 (name -> hex digest): of the lines '<sha256>  <name>',
    in the given order, as ``sha256sum`` prints them."""
    return hashlib.sha256("".join(f"{h}  {name}\n" for name, h in sha.items()).encode()).hexdigest()


# Pillow modes of more than 8 bits per pixel (a 16-bit grey PNG opens as I;16; older Pillow gives I). Pillow's
# own conversion to 8 bits clips them (every value above 255 becomes white); they are scaled by their range.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _wide_to_unit(img: Image.Image, path: Path) -> np.ndarray:
    """A 16-bit (or 32-bit integer) grey image as floats in [0, 1]: value / 65535 (the range of 16 bits, the
    widest a PNG holds); a float image (``F``) as it is. Values outside that range are refused."""
    array = np.asarray(img)
    if img.mode == "F":
        return array.astype(np.float64)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 65535:
        raise GradmetaError(f"{path}: a {img.mode} image with values from {low} to {high}; expected 0..65535 (16 bits)")
    return array.astype(np.float64) / 65535.0


def _decode(path: Path, invert: bool, geometry: Geometry = DEFAULT) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if max(img.width, img.height) > MAX_IMAGE_SIDE:
                raise GradmetaError(f"{path}: {img.width}x{img.height} pixels; an image may be at most "
                                    f"{MAX_IMAGE_SIDE} pixels on a side (it is padded to a square)")
            if img.mode in WIDE_MODES:
                array = _wide_to_unit(img, path)
            else:
                if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                    rgba = img.convert("RGBA")
                    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if invert else (0, 0, 0, 255))
                    img = Image.alpha_composite(background, rgba)
                array = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise GradmetaError(f"{path}: cannot decode the image ({str(exc).splitlines()[0] or type(exc).__name__})") from None
    return to_concept_image(array, invert, str(path), geometry)


def folder_images(path: Path) -> list[Path]:
    """The image files below ``path`` in sorted order (hidden files and folders skipped). Symlinked
    folders are followed like real ones (a class folder may be a link), each real folder once (a link
    back up the tree ends there); where the files really are is checked by :func:`checked_user_path`."""
    found: list[Path] = []
    seen: set[Path] = set()
    for folder, dirs, files in os.walk(path, followlinks=True):
        real = Path(folder).resolve()
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder, f) for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES and Path(folder, f).is_file()]
    return sorted(found)


def read_folder_concept(path: Path, invert: bool, geometry: Geometry = DEFAULT) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Images decoded one at a time into the (N, 28, 28) result; at most MAX_IMAGES files."""
    files = folder_images(path)
    if not files:
        raise GradmetaError(f"{path}: no images (.png, .jpg, .jpeg) in the folder")
    if len(files) > MAX_IMAGES:
        raise GradmetaError(f"{path}: {len(files)} images, more than the {MAX_IMAGES} a concept may have")
    images = np.empty((len(files), *geometry.image_shape), dtype=np.uint8)
    for i, p in enumerate(files):
        images[i] = _decode(p, invert, geometry)
    relative = [p.relative_to(path) for p in files]
    labels, classes = None, None
    if all(len(r.parts) == 2 for r in relative):
        classes = sorted({r.parts[0] for r in relative})
        labels = np.array([classes.index(r.parts[0]) for r in relative], dtype=np.int64)
    sha = {r.as_posix(): file_checksums(p)[1] for p, r in zip(files, relative, strict=True)}
    record = {"path": str(path), "sha256": _files_digest(sha), "files": len(files)}
    if classes is not None:
        record["classes"] = classes
    return images, labels, record


READERS = {"npz": read_npz_concept, "idx": read_idx_concept, "folder": read_folder_concept}


def _missing(spec: ConceptSpec, path: Path, where: str) -> GradmetaError:
    """The error for a user path that does not exist, with the way to get it there."""
    if Path(f"{path}.dvc").is_file():
        fix = f"it is tracked by DVC: `dvc pull {path}.dvc` fetches it (or `dvc checkout` from the local cache)"
    else:
        fix = (f"put it there and track it so it travels with the repository: `dvc add {path}`, then commit "
               f"{path}.dvc (README: Your own data as a concept)")
    return GradmetaError(f"{where}: {path} does not exist (user concept {spec.name!r}); {fix}")


def _files_read(source: str, path: Path) -> list[Path]:
    """Every file the ``source`` reader reads for ``path`` (a link among them may point anywhere)."""
    if source == "folder":
        return folder_images(path)
    if source == "idx":
        return [p for p in _idx_files(path) if p is not None]
    return [path]


def checked_user_path(spec: ConceptSpec, cfg: DataConfig, root: Path | None = None) -> Path:
    """``spec.path``, checked: it exists, is a file or folder as the format needs, and, unless the
    concept says ``outside_repo: true``, is relative and resolves (symlinks followed) inside ``root``
    (the folder the pipeline runs in: the repository), so that DVC records a portable dep and nothing
    outside the repository is read by accident."""
    path = Path(str(spec.path))
    where = f"{cfg.params_file}: data.user_concepts.{spec.name}.path"
    if not spec.outside_repo:
        root = (root or Path.cwd()).resolve()
        if path.is_absolute():
            raise GradmetaError(f"{where}: {path} is absolute; give it relative to the repository (e.g. "
                                f"user_data/{path.name}), or set data.user_concepts.{spec.name}.outside_repo: true")
        if not path.resolve().is_relative_to(root):
            raise GradmetaError(f"{where}: {path} resolves to {path.resolve()}, outside the repository {root}; move "
                                f"it under user_data/, or set data.user_concepts.{spec.name}.outside_repo: true")
    if not path.exists():
        raise _missing(spec, path, where)
    if spec.source == "npz" and not path.is_file():
        raise GradmetaError(f"{where}: {path} is not a file")
    if spec.source == "folder" and not path.is_dir():
        raise GradmetaError(f"{where}: {path} is not a folder")
    if not spec.outside_repo:
        for p in _files_read(spec.source, path):
            if not p.resolve().is_relative_to(root):
                raise GradmetaError(f"{where}: {p} resolves to {p.resolve()}, outside the repository {root}; copy it "
                                    f"in, or set data.user_concepts.{spec.name}.outside_repo: true")
    return path


def build_user(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """The concept's parts: a seeded shuffle gives ``train`` images to the train split (when the concept
    has one) and then ``test`` images (None = the rest) to the test split; labels -1 when the data have none."""
    path = checked_user_path(spec, cfg)
    where = f"{cfg.params_file}: data.user_concepts.{spec.name}.path"
    images, labels, record = READERS[spec.source](path, spec.invert, cfg.geometry)
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
