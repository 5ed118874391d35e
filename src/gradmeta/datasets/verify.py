"""Checks a public reader makes before it trusts an archive: the published checksum, and sizes
declared inside the archive against what it can hold (before anything is allocated)."""

from __future__ import annotations

import os
import zipfile

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.download import ARCHIVES, file_checksums

MAX_MEMBER_BYTES = 1 << 30  # no member of a supported archive inflates to more (EMNIST's largest: 0.55 GB)


def verify_published(path: str | os.PathLike[str], *keys: str) -> None:
    """Refuse ``path`` unless its MD5 is the published checksum of one of the ``ARCHIVES`` ``keys``."""
    md5, _ = file_checksums(path)
    expected = {ARCHIVES[k].md5: ARCHIVES[k].filename for k in keys}
    if md5 not in expected:
        names = " or ".join(f"{name} ({h})" for h, name in expected.items())
        raise GradmetaError(f"{path}: MD5 {md5} is not the published checksum of {names}; "
                            "pass verify=False to read a modified copy")


def checked_member(archive: zipfile.ZipFile, name: str, path: str | os.PathLike[str],
                   limit: int | None = None) -> zipfile.ZipInfo:
    """The ZipInfo of ``name``, refused if it declares more than ``limit`` (default
    ``MAX_MEMBER_BYTES``) bytes once inflated."""
    limit = MAX_MEMBER_BYTES if limit is None else limit
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise GradmetaError(f"{path}: member {name} inflates to {info.file_size} bytes, more than the "
                            f"{limit} a reader accepts (a damaged or hostile archive)")
    return info
