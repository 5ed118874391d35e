"""Readers for OpenOOD's photograph archives: the Describable Textures Dataset (``dtd-r1.0.1.tar.gz``),
TinyImageNet-200 (``tiny-imagenet-200.zip``: its validation images) and Places365 (``val_256.tar`` and
the file list of ``filelist_places365-standard.tar``).

Each reader lists an archive first (every member's name checked: :mod:`gradmeta.datasets.members`) into
the member names of its images, sorted, and their labels; a builder chooses positions among them (a
seeded subset, or an image list) and decodes only those, centre-cropped and resized by area to the
pipeline's height and width.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.members import tar_members, zip_members
from gradmeta.datasets.verify import checked_member

MAX_LIST_BYTES = 1 << 24  # a file list or annotations file (Places365's val list: 1 MB)
DTD_IMAGE = re.compile(r"dtd/images/([^/]+)/[^/]+\.jpg")
TIN_ROOT = "tiny-imagenet-200"
# TinyImageNet classes that are CIFAR-10 classes (cars, trucks, planes, ships, birds, cats, dogs, frogs,
# horses, deer and their kin), left out of the near-OOD set as OpenOOD leaves them out; OpenOOD's own
# selection is its image list test_tin.txt (data.concepts.<name>.image_list).
CIFAR10_WNIDS = frozenset({
    "n02814533", "n03100240", "n03670208", "n04285008", "n02701002", "n03796401", "n03977966", "n04465501",
    "n02690373", "n03662601", "n04147183", "n03344393", "n02687172", "n01855672", "n02002724", "n02058221",
    "n01818515", "n02123045", "n02123394", "n02124075", "n02085620", "n02094433", "n02099601", "n02099712",
    "n02106662", "n02113799", "n01641577", "n01644900", "n02389026", "n02423022",
})
PLACES_LIST = "places365_val.txt"
PLACES_FOLDER = "val_256"


def _open_tar(path: str | os.PathLike[str]) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GradmetaError(f"{path}: not a readable tar archive ({exc})") from None


def _tar_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the plain-file members of a tar archive, every member checked."""
    try:
        with _open_tar(path) as archive:
            return [m.name for m in tar_members(archive, path) if m.isfile()]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GradmetaError(f"{path}: not a readable tar archive ({exc})") from None


def list_textures(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """The DTD archive's images ``dtd/images/<class>/<name>.jpg``, sorted, and their class (position of the
    folder among the 47 sorted class names)."""
    names = sorted(n for n in _tar_names(path) if DTD_IMAGE.fullmatch(n))
    if not names:
        raise GradmetaError(f"{path}: no member dtd/images/<class>/<image>.jpg (not the DTD archive?)")
    classes = sorted({DTD_IMAGE.fullmatch(n).group(1) for n in names})
    index = {c: i for i, c in enumerate(classes)}
    return names, np.array([index[DTD_IMAGE.fullmatch(n).group(1)] for n in names], dtype=np.int64)


def _read_text(archive: zipfile.ZipFile, name: str, path: str | os.PathLike[str]) -> list[str]:
    try:
        checked_member(archive, name, path, MAX_LIST_BYTES)
        return archive.read(name).decode("utf-8").splitlines()
    except KeyError:
        raise GradmetaError(f"{path}: no member {name} (not the TinyImageNet-200 archive?)") from None
    except UnicodeDecodeError:
        raise GradmetaError(f"{path}: member {name} is not UTF-8 text") from None


def list_tinyimagenet(path: str | os.PathLike[str],
                      exclude: frozenset[str] = CIFAR10_WNIDS) -> tuple[list[str], np.ndarray]:
    """TinyImageNet-200's validation images (``val/images/val_<n>.JPEG``, by the annotations file
    ``val/val_annotations.txt``) whose class is not in ``exclude``, sorted by name, and their class
    (position of the WordNet id among the sorted ``wnids.txt``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            present = {m.filename for m in zip_members(archive, path)}
            wnids = sorted(w.strip() for w in _read_text(archive, f"{TIN_ROOT}/wnids.txt", path) if w.strip())
            lines = _read_text(archive, f"{TIN_ROOT}/val/val_annotations.txt", path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise GradmetaError(f"{path}: not a readable zip archive ({exc})") from None
    index = {w: i for i, w in enumerate(wnids)}
    chosen: list[tuple[str, int]] = []
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index or "/" in fields[0]:
            raise GradmetaError(f"{path}: val/val_annotations.txt line {number}: expected '<image>\\t<wnid of "
                                f"wnids.txt>\\t...', got {line[:80]!r}")
        name = f"{TIN_ROOT}/val/images/{fields[0]}"
        if name not in present:
            raise GradmetaError(f"{path}: val/val_annotations.txt names {fields[0]}, which the archive lacks")
        if fields[1] not in exclude:
            chosen.append((name, index[fields[1]]))
    if not chosen:
        raise GradmetaError(f"{path}: no validation image left (is it the TinyImageNet-200 archive?)")
    chosen.sort()
    return [n for n, _ in chosen], np.array([c for _, c in chosen], dtype=np.int64)


def list_places365(images: str | os.PathLike[str], filelist: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Places365's validation images (``val_256/<name>.jpg`` of ``images``) as its file list
    (``places365_val.txt`` of ``filelist``: ``<name> <class>`` per line) names them, in the list's order
    (sorted by name), and their scene class 0-364; an image the list names and the archive lacks is refused."""
    try:
        with _open_tar(filelist) as archive:
            members = {m.name: m for m in tar_members(archive, filelist)}
            info = members.get(PLACES_LIST)
            if info is None or not info.isfile() or info.size > MAX_LIST_BYTES:
                raise GradmetaError(f"{filelist}: no member {PLACES_LIST} of at most {MAX_LIST_BYTES} bytes "
                                    "(not Places365's file list archive?)")
            text = archive.extractfile(info).read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise GradmetaError(f"{filelist}: not a readable file list archive ({exc})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) >= 365 or "/" in fields[0]:
            raise GradmetaError(f"{filelist}: {PLACES_LIST} line {number}: expected '<image> <class 0-364>', "
                                f"got {line[:80]!r}")
        entries.append((f"{PLACES_FOLDER}/{fields[0]}", int(fields[1])))
    entries.sort()
    present = set(_tar_names(images))
    missing = [n for n, _ in entries if n not in present]
    if missing:
        raise GradmetaError(f"{images}: lacks {missing[0]}, which {PLACES_LIST} names ({len(missing)} missing)")
    if not entries:
        raise GradmetaError(f"{filelist}: {PLACES_LIST} names no image")
    return [n for n, _ in entries], np.array([c for _, c in entries], dtype=np.int64)
