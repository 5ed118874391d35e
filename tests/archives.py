"""Builders of small archives in the original upstream formats, for the reader and download tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding (unsigned bytes) of ``array``."""
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def upright_glyph() -> np.ndarray:
    """An asymmetric 28x28 glyph: a vertical bar on the left and a short foot at the bottom (an 'L')."""
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:24, 6:9] = 255   # vertical stroke, left
    img[21:24, 6:18] = 200  # foot, bottom
    return img


def make_emnist_zip(path: Path, counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """A gzip.zip with emnist-<subset>-<split> IDX files; images are stored transposed as in EMNIST.

    Returns the upright images and the raw (as stored) labels of each (subset, split).
    """
    truth = {}
    with zipfile.ZipFile(path, "w") as zf:
        for (subset, split), n in counts.items():
            rng = np.random.default_rng(len(subset) * 10 + len(split))
            images = np.stack([np.roll(upright_glyph(), i % 3, axis=1) for i in range(n)])
            images[:, 0, 27] = np.arange(n) % 256  # a per-image marker pixel (top-right when upright)
            labels = rng.integers(1 if subset == "letters" else 0, 27 if subset == "letters" else 10, n)
            stored = images.transpose(0, 2, 1)
            zf.writestr(f"gzip/emnist-{subset}-{split}-images-idx3-ubyte.gz", gzip.compress(idx_bytes(stored)))
            zf.writestr(f"gzip/emnist-{subset}-{split}-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels)))
            truth[(subset, split)] = (images, labels)
    return truth


def make_omniglot_zip(path: Path, top: str, alphabets: dict[str, int], drawings: int = 2) -> list[str]:
    """An Omniglot-like zip of 105x105 PNGs, black strokes on white: a black square in the top-left quarter.

    Returns the member names in sorted order.
    """
    names = []
    with zipfile.ZipFile(path, "w") as zf:
        for alphabet, characters in alphabets.items():
            for c in range(1, characters + 1):
                for d in range(1, drawings + 1):
                    img = np.full((105, 105), 255, dtype=np.uint8)
                    img[0:52, 0:52] = 0
                    buf = io.BytesIO()
                    Image.fromarray(img).convert("1").save(buf, format="PNG")
                    name = f"{top}/{alphabet}/character{c:02d}/{c:04d}_{d:02d}.png"
                    zf.writestr(name, buf.getvalue())
                    names.append(name)
    return sorted(names)


def make_cifar_tarball(path: Path, n: int = 6, train_per_batch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A cifar-10-python.tar.gz whose test batch holds ``n`` flat-colour images; returns (rgb, labels). With
    ``train_per_batch``, also the five training batches data_batch_1..5 of that many images each, every
    image a random pattern whose first pixel's red value is its position among all training images."""
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [10, 20, 30]])
    rgb = np.stack([np.broadcast_to(colours[i % len(colours)], (32, 32, 3)) for i in range(n)]).astype(np.uint8)
    labels = [i % 10 for i in range(n)]
    batches = {"test_batch": (rgb, labels, b"testing batch 1 of 1")}
    rng = np.random.default_rng(5)
    for b in range(1, 6) if train_per_batch else ():
        images = rng.integers(0, 256, (train_per_batch, 32, 32, 3)).astype(np.uint8)
        images[:, 0, 0, 0] = np.arange(train_per_batch) + (b - 1) * train_per_batch
        batches[f"data_batch_{b}"] = (images, [int(v) for v in rng.integers(0, 10, train_per_batch)],
                                      f"training batch {b} of 5".encode())
    with tarfile.open(path, "w:gz") as tf:
        for name, (images, batch_labels, title) in batches.items():
            batch = {b"batch_label": title, b"labels": batch_labels,
                     b"data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
                     b"filenames": [b"x.png"] * len(images)}
            payload = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return rgb, np.array(labels)


def cifar_train_batches(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The training images (N, 32, 32, 3) and labels of a tarball :func:`make_cifar_tarball` wrote, read back
    with pickle directly (the tests' own reference, not gradmeta's reader)."""
    images, labels = [], []
    with tarfile.open(path, "r:gz") as tf:
        for b in range(1, 6):
            batch = pickle.load(tf.extractfile(f"cifar-10-batches-py/data_batch_{b}"))  # noqa: S301 (our fixture)
            images.append(batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels += batch[b"labels"]
    return np.concatenate(images), np.array(labels)


def make_idx_dataset(folder: Path, counts: dict[str, int], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST-style gzipped IDX files (train-/t10k-images-idx3-ubyte.gz and -labels-idx1-ubyte.gz) in
    ``folder``: dim noise with a bright bar whose row says the class (learnable; a fifth of the images
    show a random class's bar instead, so a CNN makes mistakes), and each image's position in a marker
    pixel. Returns (images, labels) per split."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = {}
    for split, n in counts.items():
        prefix = "train" if split == "train" else "t10k"
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        shown = np.where(rng.random(n) < 0.2, rng.integers(0, 10, n), labels)
        for i, k in enumerate(shown):
            images[i, 4 + 2 * k: 6 + 2 * k, 4:24] = 255
        images[:, 0, 0] = np.arange(n) % 256
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        truth[split] = (images, labels.astype(np.int64))
    return truth


def make_cifar100_tarball(path: Path, counts: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A cifar-100-python.tar.gz with the files train and test (``counts`` images each): random RGB images
    whose first red value is the position, fine labels 0-99 (and coarse labels, as the real files have)."""
    rng = np.random.default_rng(7)
    truth = {}
    with tarfile.open(path, "w:gz") as tf:
        for split, n in counts.items():
            images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
            images[:, 0, 0, 0] = np.arange(n)
            fine = [int(v) for v in rng.integers(0, 100, n)]
            batch = {b"filenames": [b"x.png"] * n, b"batch_label": b"x", b"fine_labels": fine,
                     b"coarse_labels": [f // 5 for f in fine], b"data": images.transpose(0, 3, 1, 2).reshape(n, 3072)}
            payload = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-100-python/{split}")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
            truth[split] = (images, np.array(fine))
    return truth


def make_svhn_mat(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A MATLAB v5 test_32x32.mat (scipy's writer): X uint8 (32, 32, 3, n), y (n, 1) with the digits 1-10
    (10 = the digit 0). Returns the images (n, 32, 32, 3) and the digits shown (0-9)."""
    from scipy.io import savemat

    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    digits = np.arange(n) % 10
    savemat(path, {"X": images.transpose(1, 2, 3, 0), "y": np.where(digits == 0, 10, digits).reshape(n, 1).astype(np.uint8)},
            format="5")
    return images, digits


def flat_jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    """A JPEG of one flat colour, ``size`` = (width, height)."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def add_bytes(tf: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tf.addfile(info, io.BytesIO(payload))


def make_dtd_tarball(path: Path, classes: dict[str, int], extra: dict[str, bytes] | None = None) -> list[str]:
    """A dtd-r1.0.1.tar.gz with ``dtd/images/<class>/<class>_<k>.jpg`` of flat colours (image k of class c:
    colour (40 c + 10, 8 k, 200), 300x200 pixels), a labels file as the real archive has, and ``extra``
    members. Returns the image members, sorted."""
    names = []
    with tarfile.open(path, "w:gz") as tf:
        add_bytes(tf, "dtd/labels/labels_joint_anno.txt", b"x\n")
        for c, (cls, n) in enumerate(sorted(classes.items())):
            for k in range(n):
                name = f"dtd/images/{cls}/{cls}_{k:04d}.jpg"
                add_bytes(tf, name, flat_jpeg((40 * c + 10, 8 * k, 200), (300, 200)))
                names.append(name)
        for name, payload in (extra or {}).items():
            add_bytes(tf, name, payload)
    return sorted(names)


def make_tin_zip(path: Path, wnids: list[str], per_class: int) -> list[tuple[str, str]]:
    """A tiny-imagenet-200.zip with wnids.txt, val/val_annotations.txt and val/images/val_<n>.JPEG (64x64,
    image n a flat grey of value n). Returns (file, wnid) in annotation order."""
    rows = [(f"val_{i}.JPEG", wnids[i % len(wnids)]) for i in range(per_class * len(wnids))]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "\n".join(wnids) + "\n")
        zf.writestr("tiny-imagenet-200/val/val_annotations.txt",
                    "".join(f"{f}\t{w}\t0\t0\t63\t63\n" for f, w in rows))
        for i, (f, _) in enumerate(rows):
            zf.writestr(f"tiny-imagenet-200/val/images/{f}", flat_jpeg((i * 5, i * 5, i * 5), (64, 64)))
    return rows


def make_places_archives(folder: Path, n: int) -> list[int]:
    """Places365's val_256.tar (``val_256/Places365_val_<8 digits>.jpg``, 256x256, image i a flat colour
    (i * 10, 100, 50)) and filelist_places365-standard.tar (``places365_val.txt``) in ``folder``. Returns the
    classes the list gives."""
    folder.mkdir(parents=True, exist_ok=True)
    classes = [(7 * i) % 365 for i in range(n)]
    with tarfile.open(folder / "val_256.tar", "w") as tf:
        for i in range(n):
            add_bytes(tf, f"val_256/Places365_val_{i + 1:08d}.jpg", flat_jpeg((i * 10, 100, 50), (256, 256)))
    text = "".join(f"Places365_val_{i + 1:08d}.jpg {c}\n" for i, c in enumerate(classes)).encode()
    with tarfile.open(folder / "filelist_places365-standard.tar", "w") as tf:
        add_bytes(tf, "places365_val.txt", text)
        add_bytes(tf, "categories_places365.txt", b"/a/airfield 0\n")
    return classes
