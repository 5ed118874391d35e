"""Fetch an archive once, verify it against its published MD5, and keep it cached by checksum.

``ensure_archive`` looks in the raw folder first: a file there (downloaded earlier or placed by
hand) whose MD5 matches is used without any network. Otherwise it downloads to ``<name>.part``
with a progress bar, resumes a partial file with an HTTP Range request, retries transient
failures a few times, and renames the file into place only after the checksum matches. A host
that cannot be resolved or reached within a few seconds fails at once: no long hang offline.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from gradmeta.core.errors import GradmetaError

CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveSpec:
    """An upstream archive: its file name, download URL and published MD5; ``folder`` keeps data sets
    whose files share names (MNIST and Fashion-MNIST) apart in the cache and on a mirror."""

    filename: str
    url: str
    md5: str
    folder: str = ""

    @property
    def relpath(self) -> str:
        """The archive's path below the cache folder and below a mirror's base URL."""
        return f"{self.folder}/{self.filename}" if self.folder else self.filename


@dataclass(frozen=True)
class ArchiveRecord:
    """A verified archive on disk and how it got there (``cached`` or ``downloaded``)."""

    path: Path
    md5: str
    sha256: str
    origin: str

    def provenance(self, spec: ArchiveSpec, url: str | None) -> dict[str, str]:
        return {"file": spec.filename, "md5": self.md5, "sha256": self.sha256,
                "url": url or spec.url, "origin": self.origin}


ARCHIVES = {
    "emnist": ArchiveSpec("gzip.zip", "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                          "58c8d27c78d21e728a6bc7b3cc06412e"),
    "omniglot_background": ArchiveSpec(
        "images_background.zip",
        "https://github.com/brendenlake/omniglot/raw/master/python/images_background.zip",
        "68d2efa1b9178cc56df9314c21c6e718"),
    "omniglot_evaluation": ArchiveSpec(
        "images_evaluation.zip",
        "https://github.com/brendenlake/omniglot/raw/master/python/images_evaluation.zip",
        "6b91aef0f799c5bb55b94e3f2daec811"),
    "cifar10": ArchiveSpec("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                           "c58f30108f718f92721af3b95e74349a"),
    # OpenOOD v1.5's near- and far-OOD sets of its CIFAR-10 benchmark, from their publishers
    "cifar100": ArchiveSpec("cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                            "eb9058c3a382ffc7106e4002c42a8d85"),
    "svhn_test": ArchiveSpec("test_32x32.mat", "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                             "eb5a983be6a315427106f1b164d9cef3", folder="svhn"),
    "dtd": ArchiveSpec("dtd-r1.0.1.tar.gz", "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                       "fff73e5086ae6bdbea199a49dfb8a4c1"),
    "tinyimagenet": ArchiveSpec("tiny-imagenet-200.zip", "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                                "90528d7ca1a48142e341f4ef8d21d0de"),
    "places365_val": ArchiveSpec("val_256.tar", "http://data.csail.mit.edu/places/places365/val_256.tar",
                                 "e27b17d8d44f4af9a78502beb927f808", folder="places365"),
    "places365_filelist": ArchiveSpec("filelist_places365-standard.tar",
                                      "http://data.csail.mit.edu/places/places365/filelist_places365-standard.tar",
                                      "35a0585fee1fa656440f3ab298f8479c", folder="places365"),
}
MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision uses
FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
IDX_FILES = {  # (split, part) -> file name; the same names for MNIST and Fashion-MNIST
    ("train", "images"): "train-images-idx3-ubyte.gz", ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz", ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
IDX_MD5 = {  # the published checksums of each data set's four files
    "mnist": {("train", "images"): "f68b3c2dcbeaaa9fbdd348bbdeb94873", ("train", "labels"): "d53e105ee54ea40749a09fcbcd1e9432",
              ("test", "images"): "9fb629c4189551a2d022fa330f9573f3", ("test", "labels"): "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion_mnist": {("train", "images"): "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      ("train", "labels"): "25c81989df183df01b3e8a0aad5dffbe",
                      ("test", "images"): "bef4ecab320f06d8554ea6380940ec79",
                      ("test", "labels"): "bb300cfdad3c16e7a12a480ee83cd310"},
}
IDX_BASES = {"mnist": MNIST_BASE, "fashion_mnist": FASHION_BASE}
ARCHIVES.update({f"{name}_{split}_{part}": ArchiveSpec(file, IDX_BASES[name] + file, IDX_MD5[name][(split, part)],
                                                       folder=name)
                 for name in IDX_MD5 for (split, part), file in IDX_FILES.items()})


def file_checksums(path: str | os.PathLike[str]) -> tuple[str, str]:
    """MD5 and SHA-256 hex digests of a file, read once."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def archive_url(spec: ArchiveSpec, mirror: str | None) -> str:
    """The URL to fetch ``spec`` from: the upstream URL, or ``<mirror>/<relpath>``."""
    return f"{mirror.rstrip('/')}/{spec.relpath}" if mirror else spec.url


class _Transient(Exception):
    """A failure worth another attempt (cut connection, timeout, refused, 5xx)."""


CONNECT_TIMEOUT = 5.0


def offline_hint(spec: ArchiveSpec, target: Path) -> str:
    """How to go on without network: the archive placed by hand, or a mirror."""
    return (f"no network? place {spec.filename} in {target.parent} by hand (data.real.raw_dir sets that folder), "
            "or set data.real.mirror to a URL that serves the same file names")


def _check_reachable(url: str, timeout: float, hint: str) -> None:
    """Fail at once, with no retries, when the host cannot be resolved or a TCP connection to it
    does not open within ``timeout`` seconds (no network): never a long hang. ``hint`` ends the error."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise GradmetaError(f"download of {url} failed: cannot resolve the host ({exc}); {hint}") from None
    except TimeoutError:
        raise GradmetaError(f"download of {url} failed: no connection to {parts.hostname}:{port} within "
                            f"{timeout:g} s; {hint}") from None
    except OSError:
        pass  # refused or reset: a transient server problem, left to the retries


def _open(url: str, offset: int, timeout: float, hint: str):  # noqa: ANN202 - an http.client response or None
    """Open ``url`` from byte ``offset`` (Range); None if the partial file is already complete.
    Transient failures raise _Transient, permanent ones a GradmetaError."""
    request = urllib.request.Request(url, headers={"User-Agent": "gradmeta"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is already complete
            return None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise GradmetaError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, socket.gaierror):
            raise GradmetaError(f"download of {url} failed: cannot resolve the host ({exc.reason}); {hint}") from None
        raise _Transient(str(exc.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None


def _fetch_once(url: str, part: Path, timeout: float, progress: bool, hint: str) -> None:
    """One attempt: append to ``part`` from where it stops (Range), or start over if unsupported."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, timeout, hint)
    if response is None:
        return
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        part.parent.mkdir(parents=True, exist_ok=True)  # only once there is something to write
        try:
            with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                               desc=part.name.removesuffix(".part"),
                                               disable=None if progress else True, leave=False) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Transient(f"connection broke off ({type(exc).__name__}: {exc})") from None
        if total is not None and part.stat().st_size < total:
            raise _Transient(f"connection closed after {part.stat().st_size} of {total} bytes")


def ensure_archive(spec: ArchiveSpec, raw_dir: str | os.PathLike[str], *, mirror: str | None = None,
                   retries: int = 3, timeout: float = 30.0, backoff: float = 0.5,
                   progress: bool = True) -> ArchiveRecord:
    """Return the verified archive ``raw_dir/<relpath>``, downloading it only if it is not there.

    Raises :class:`GradmetaError` with one line on a checksum mismatch (naming the file, expected
    and actual MD5), an HTTP error, or when every attempt failed (no network): never falls back.
    """
    raw = Path(raw_dir)
    target = raw / spec.relpath
    if target.exists():
        md5, sha = file_checksums(target)
        if md5 != spec.md5:
            raise GradmetaError(f"{target}: checksum mismatch, expected md5 {spec.md5}, got {md5} "
                                "(remove or replace the file)")
        return ArchiveRecord(target, md5, sha, "cached")

    url = archive_url(spec, mirror)
    hint = offline_hint(spec, target)
    _check_reachable(url, min(timeout, CONNECT_TIMEOUT), hint)
    part = raw / (spec.relpath + ".part")
    attempts = retries + 1
    for attempt in range(attempts):
        try:
            _fetch_once(url, part, timeout, progress, hint)
            break
        except _Transient as exc:
            if attempt + 1 == attempts:
                raise GradmetaError(
                    f"download of {url} failed after {attempts} attempts ({exc}); {hint}") from None
            time.sleep(backoff * 2**attempt)
    md5, sha = file_checksums(part)
    if md5 != spec.md5:
        part.unlink(missing_ok=True)
        raise GradmetaError(f"{target}: checksum mismatch after download from {url}, "
                            f"expected md5 {spec.md5}, got {md5} (file deleted)")
    os.replace(part, target)
    return ArchiveRecord(target, md5, sha, "downloaded")
