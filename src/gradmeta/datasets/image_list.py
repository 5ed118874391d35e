"""Image lists: a concept's ``image_list`` (OpenOOD's ``benchmark_imglist`` format, one ``<relative path>
<label>`` per line) selects exactly the images of its source that the list names.

How a line names an image (``keys`` are a source's names for its images):
- archives of files (DTD, TinyImageNet, Places365): the member path; the line's path matches the member
  whose path ends with the line's file name and as many of its folders as it takes to tell members apart
  (``images_classic/texture/banded/banded_0002.jpg`` names ``dtd/images/banded/banded_0002.jpg``);
- archives of arrays (CIFAR-10, CIFAR-100, SVHN, MNIST, EMNIST): the image's position in its split,
  ``<split>/<position>`` (``cifar100/test/42.png`` and ``test/00042.png`` name test image 42).
A line that names no image, or more than one, fails with one line naming it; no image is chosen twice.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import shown

IMAGE_LISTS = Path("user_data/image_lists")  # where image lists live (a dep of every download stage)
MAX_LIST_BYTES = 1 << 26


def checked_list_path(value: str, where: str, root: Path | None = None) -> Path:
    """``value`` (a concept's ``image_list``), checked: relative, inside :data:`IMAGE_LISTS` of ``root`` (the
    repository; the download stages depend on that folder) once symlinks are followed, an existing file."""
    path = Path(value)
    root = (root or Path.cwd()).resolve()
    if path.is_absolute() or not path.resolve().is_relative_to(root / IMAGE_LISTS):
        raise GradmetaError(f"{where} must lie in {IMAGE_LISTS}/ of the repository (the download stages' dep), "
                            f"got {shown(value)}")
    if not path.is_file():
        raise GradmetaError(f"{where}: {path} does not exist (put OpenOOD's list there and commit it)")
    return path


def read_image_list(path: str | os.PathLike[str]) -> list[str]:
    """The image paths of an image list, in order; a line that is not ``<relative path> <integer label>``
    (blank lines aside) fails naming the file and the line."""
    size = os.path.getsize(path)
    if size > MAX_LIST_BYTES:
        raise GradmetaError(f"{path}: {size} bytes, more than the {MAX_LIST_BYTES} an image list may have")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GradmetaError(f"{path}: not UTF-8 text (an image list is '<relative path> <label>' per line)") from None
    paths = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        label = fields[-1].lstrip("-")
        bad = len(fields) != 2 or not label.isdigit() or PurePosixPath(fields[0]).is_absolute() \
            or ".." in fields[0].split("/")
        if bad:
            raise GradmetaError(f"{path}: line {number}: expected '<relative path> <integer label>', got "
                                f"{shown(line)}")
        paths.append(fields[0])
    if not paths:
        raise GradmetaError(f"{path}: names no image")
    return paths


def _by_file_name(keys: list[str]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        index.setdefault(key.rsplit("/", 1)[-1], []).append(i)
    return index


def _position(line_path: str, keys: list[str], by_name: dict[str, list[int]], by_key: dict[str, int]) -> int | None:
    """The position among ``keys`` that ``line_path`` names, None if it names none; ambiguity is an error."""
    parts = line_path.split("/")
    candidates = by_name.get(parts[-1], [])
    depth = 1
    while len(candidates) > 1 and depth < len(parts):
        depth += 1
        tail = "/".join(parts[-depth:])
        candidates = [i for i in candidates if keys[i] == tail or keys[i].endswith("/" + tail)]
    if len(candidates) > 1:
        raise GradmetaError(f"names {line_path}, which matches {len(candidates)} images ({keys[candidates[0]]}, "
                            f"{keys[candidates[1]]}, ...)")
    if candidates:
        return candidates[0]
    stem = PurePosixPath(parts[-1]).stem
    if len(parts) >= 2 and stem.isdigit():
        return by_key.get(f"{parts[-2]}/{int(stem)}")
    return None


def match_image_list(line_paths: list[str], keys: list[str], list_path: str | os.PathLike[str],
                     archive: str) -> np.ndarray:
    """Sorted positions among ``keys`` (the source's image names, see the module) that the list's paths
    name; a path naming no image of ``archive``, or one named twice, fails with one line."""
    by_name, by_key = _by_file_name(keys), {k: i for i, k in enumerate(keys)}
    positions: dict[int, str] = {}
    for line_path in line_paths:
        try:
            i = _position(line_path, keys, by_name, by_key)
        except GradmetaError as exc:
            raise GradmetaError(f"{list_path}: {exc}") from None
        if i is None:
            raise GradmetaError(f"{list_path}: names {shown(line_path)}, which {archive} lacks")
        if i in positions:
            raise GradmetaError(f"{list_path}: names {keys[i]} twice ({positions[i]} and {line_path})")
        positions[i] = line_path
    return np.array(sorted(positions), dtype=np.int64)
