"""Members of tar and zip archives, read without extracting anything: checked names, and images decoded
in memory under size caps.

Nothing is ever written out of an archive, so no member can land outside the cache; an archive holding a
member that *would* (an absolute path, a ``..`` component, a symbolic or hard link, a device) is refused
whole, with one line naming the archive and the member: such an archive was not made by the data set's
publishers.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.imageops import area_resize

MAX_IMAGE_BYTES = 1 << 24        # one encoded image member (the largest DTD photograph: about 0.3 MB)
MAX_IMAGE_PIXELS = 4096 * 4096   # declared pixels of one image, checked before it is decoded


def _unsafe_name(name: str) -> str | None:
    """Why a member called ``name`` would land outside the folder it is extracted to, or None."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "a '..' component"
    return None


def refuse(path: str | os.PathLike[str], name: str, why: str) -> GradmetaError:
    """The one-line error for member ``name`` of archive ``path``."""
    return GradmetaError(f"{path}: member {name[:200]!r} would land outside the cache ({why}); "
                         "refusing the archive (not the publishers' file?)")


def tar_members(archive: tarfile.TarFile, path: str | os.PathLike[str]) -> list[tarfile.TarInfo]:
    """Every member of an open tar archive, each checked: a link, a device or a name leading out of the
    extraction folder refuses the archive. One pass over a compressed archive."""
    members = archive.getmembers()
    for info in members:
        why = _unsafe_name(info.name)
        if why is None and (info.issym() or info.islnk()):
            why = f"a {'symbolic' if info.issym() else 'hard'} link to {info.linkname[:100]!r}"
        if why is None and not (info.isfile() or info.isdir()):
            why = "a device or pipe"
        if why:
            raise refuse(path, info.name, why)
    return members


def zip_members(archive: zipfile.ZipFile, path: str | os.PathLike[str]) -> list[zipfile.ZipInfo]:
    """Every member of an open zip archive, each checked as :func:`tar_members` does (a zip stores a
    symbolic link as a member whose Unix mode says so)."""
    members = archive.infolist()
    for info in members:
        why = _unsafe_name(info.filename)
        if why is None and stat.S_ISLNK(info.external_attr >> 16):
            why = "a symbolic link"
        if why:
            raise refuse(path, info.filename, why)
    return members


def crop_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre of ``image`` (H, W, 3) uint8 cropped to the aspect of ``height`` x ``width``, then resized to
    it by area (:func:`gradmeta.datasets.imageops.area_resize`): OpenOOD's resize-then-centre-crop, in the
    other order, with an area filter."""
    h, w = image.shape[:2]
    if h * width > w * height:
        ch, cw = max(1, round(w * height / width)), w
    else:
        ch, cw = h, max(1, round(h * width / height))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(image[top: top + ch, left: left + cw])
    return crop if crop.shape[:2] == (height, width) else area_resize(crop, (height, width))


def decode_rgb(data: bytes, path: str | os.PathLike[str], name: str) -> np.ndarray:
    """An encoded image (JPEG, PNG, ...) as RGB uint8 (H, W, 3); its declared size is checked before it is
    decoded, and a corrupt or truncated image is one line naming archive and member."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise GradmetaError(f"{path}: {name} declares {img.width}x{img.height} pixels, more than the "
                                    f"{MAX_IMAGE_PIXELS} an image may have")
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise GradmetaError(f"{path}: cannot decode member {name} ({exc})") from None


def _check_size(size: int, path: str | os.PathLike[str], name: str) -> None:
    """Refuse a member that declares more than :data:`MAX_IMAGE_BYTES` before it is read."""
    if size > MAX_IMAGE_BYTES:
        raise GradmetaError(f"{path}: member {name} declares {size} bytes, more than the {MAX_IMAGE_BYTES} "
                            "an image member may hold")


def read_tar_images(path: str | os.PathLike[str], names: list[str], height: int, width: int) -> np.ndarray:
    """The images ``names`` (members of the tar or tar.gz at ``path``), in that order, as RGB uint8
    (len(names), height, width, 3) (:func:`crop_resize`); one sequential pass over the archive."""
    wanted = {name: i for i, name in enumerate(names)}
    out = np.empty((len(names), height, width, 3), dtype=np.uint8)
    found = 0
    try:
        with tarfile.open(path, "r:*") as archive:
            for info in archive:
                i = wanted.get(info.name)
                if i is None or not info.isfile():
                    continue
                _check_size(info.size, path, info.name)
                out[i] = crop_resize(decode_rgb(archive.extractfile(info).read(), path, info.name), height, width)
                found += 1
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise GradmetaError(f"{path}: not a readable tar archive ({exc})") from None
    if found != len(names):
        raise GradmetaError(f"{path}: {len(names) - found} of the chosen members are missing from the archive")
    return out


def read_zip_images(path: str | os.PathLike[str], names: list[str], height: int, width: int) -> np.ndarray:
    """The images ``names`` (members of the zip at ``path``), in that order, as RGB uint8
    (len(names), height, width, 3) (:func:`crop_resize`)."""
    out = np.empty((len(names), height, width, 3), dtype=np.uint8)
    try:
        with zipfile.ZipFile(path) as archive:
            for i, name in enumerate(names):
                info = archive.getinfo(name)
                _check_size(info.file_size, path, name)
                out[i] = crop_resize(decode_rgb(archive.read(info), path, name), height, width)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as exc:
        raise GradmetaError(f"{path}: not a readable zip archive ({exc})") from None
    return out
