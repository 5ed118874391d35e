"""Archives and files built to hurt: none runs code, none exhausts memory, each fails in one line."""

import gzip
import io
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest
from archives import idx_bytes, make_cifar_tarball, make_emnist_zip, make_omniglot_zip
from PIL import Image

from gradmeta.cnn import load_model
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import read_cifar10_test, read_emnist, read_omniglot
from gradmeta.datasets.emnist import read_idx


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cifar_with(path, batch_bytes):
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(batch_bytes)
        tf.addfile(info, io.BytesIO(batch_bytes))


def test_a_crafted_cifar_archive_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-python.tar.gz"
    cifar_with(path, pickle.dumps({b"data": RunsCode(marker), b"labels": [0]}))
    with pytest.raises(GradmetaError, match="refused to load posix.system|refused to load os.system"):
        read_cifar10_test(path, verify=False)
    assert not marker.exists()


def test_a_real_format_cifar_batch_still_loads_protocol_2(tmp_path):
    """Python 2 era batches (protocol 2, numpy _reconstruct) pass the restricted unpickler."""
    rgb = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    path = tmp_path / "cifar-10-python.tar.gz"
    cifar_with(path, pickle.dumps({b"data": rgb, b"labels": [3, 4], b"filenames": [b"a", b"b"]}, protocol=2))
    images, labels = read_cifar10_test(path, verify=False)
    assert images.shape == (2, 28, 28) and list(labels) == [3, 4]


def test_public_readers_verify_the_published_checksum_by_default(tmp_path):
    emnist, omniglot, cifar = tmp_path / "gzip.zip", tmp_path / "images_background.zip", tmp_path / "c.tar.gz"
    make_emnist_zip(emnist, {("digits", "test"): 2})
    make_omniglot_zip(omniglot, "images_background", {"A": 1})
    make_cifar_tarball(cifar)
    with pytest.raises(GradmetaError, match="not the published checksum of gzip.zip.*verify=False"):
        read_emnist(emnist, "digits", "test")
    with pytest.raises(GradmetaError, match="images_background.zip .* or images_evaluation.zip"):
        read_omniglot(omniglot)
    with pytest.raises(GradmetaError, match="not the published checksum of cifar-10-python.tar.gz"):
        read_cifar10_test(cifar)
    assert len(read_emnist(emnist, "digits", "test", verify=False)[0]) == 2  # the explicit opt-out


@pytest.mark.parametrize("header, message", [
    (b"\x00\x00\x08\x03" + struct.pack(">3I", 4_000_000_000, 28, 28), "more than the"),
    (b"\x00\x00\x08\xff", "declares 255 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">2I", 5, 28), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"abc", "truncated IDX data"),
])
def test_idx_headers_are_checked_before_allocating(header, message):
    with pytest.raises(GradmetaError, match=message):
        read_idx(io.BytesIO(header), "x.idx")


def test_a_zip_member_that_inflates_beyond_the_limit_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "gzip.zip"
    payload = gzip.compress(idx_bytes(np.zeros((3000, 28, 28), np.uint8)))  # compresses ~1000:1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("gzip/emnist-digits-test-images-idx3-ubyte.gz", payload * 8)
        zf.writestr("gzip/emnist-digits-test-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(np.zeros(3000, np.uint8))))
    monkeypatch.setattr("gradmeta.datasets.verify.MAX_MEMBER_BYTES", 10_000)
    with pytest.raises(GradmetaError, match="inflates to .* bytes, more than the 10000"):
        read_emnist(path, "digits", "test", verify=False)


def png(width, height):
    buf = io.BytesIO()
    Image.new("1", (width, height), 1).save(buf, format="PNG")
    return buf.getvalue()


def test_omniglot_bomb_png_empty_zip_and_garbage(tmp_path):
    path = tmp_path / "images_background.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images_background/A/character01/0001_01.png", png(20000, 20000))
    with pytest.raises(GradmetaError, match="cannot decode images_background/A/character01/0001_01.png .*bomb"):
        read_omniglot(path, verify=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:  # under PIL's limit, over a drawing's
        zf.writestr("images_background/A/character01/0001_01.png", png(5000, 5000))
    with pytest.raises(GradmetaError, match="0001_01.png declares 5000x5000 pixels, more than the"):
        read_omniglot(path, verify=False)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.txt", "nothing here")
    with pytest.raises(GradmetaError, match="no PNG drawings"):
        read_omniglot(path, verify=False)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images_background/A/character01/0001_01.png", b"not a png")
    with pytest.raises(GradmetaError, match="cannot decode images_background/A/character01/0001_01.png"):
        read_omniglot(path, verify=False)


@pytest.mark.filterwarnings("error")  # torch's pickle-protocol warning must not come before our line
def test_a_model_file_of_random_bytes_is_named_not_a_model(tmp_path):
    path = tmp_path / "cnn.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GradmetaError, match=r"cnn.pt: not a gradmeta model checkpoint") as info:
        load_model(path)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(GradmetaError, match="not a gradmeta model checkpoint"):
        load_model(path)
    assert not marker.exists()
