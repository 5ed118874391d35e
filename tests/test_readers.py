import numpy as np
import pytest
from archives import (
    make_cifar_tarball,
    make_emnist_zip,
    make_omniglot_zip,
    upright_glyph,
)

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import read_cifar10_test, read_emnist, read_omniglot


def test_emnist_images_come_out_upright_with_labels(tmp_path):
    path = tmp_path / "gzip.zip"
    truth = make_emnist_zip(path, {("digits", "train"): 5, ("digits", "test"): 3, ("letters", "test"): 4})
    images, labels = read_emnist(path, "digits", "train", verify=False)
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(images, truth[("digits", "train")][0])
    np.testing.assert_array_equal(labels, truth[("digits", "train")][1])
    # orientation: the L's vertical bar is on the left and its foot at the bottom
    assert images[0, 10, 7] == 255 and images[0, 22, 15] == 200 and images[0, 7, 22] == 0
    np.testing.assert_array_equal(images[0, 1:], upright_glyph()[1:])
    # the marker pixel sits top-right when upright
    assert list(images[:, 0, 27]) == [0, 1, 2, 3, 4]


def test_emnist_letters_labels_shift_to_zero_based(tmp_path):
    path = tmp_path / "gzip.zip"
    truth = make_emnist_zip(path, {("letters", "test"): 50})
    _, labels = read_emnist(path, "letters", "test", verify=False)
    np.testing.assert_array_equal(labels, truth[("letters", "test")][1] - 1)
    assert labels.min() >= 0 and labels.max() <= 25


def test_emnist_missing_member_and_corrupt_zip(tmp_path):
    path = tmp_path / "gzip.zip"
    make_emnist_zip(path, {("digits", "test"): 2})
    with pytest.raises(GradmetaError, match="no member emnist-digits-train-images"):
        read_emnist(path, "digits", "train", verify=False)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GradmetaError, match="bad.zip"):
        read_emnist(bad, "digits", "test", verify=False)


def test_omniglot_is_inverted_and_area_resized(tmp_path):
    path = tmp_path / "images_background.zip"
    names = make_omniglot_zip(path, "images_background", {"Alpha": 2, "Beta": 1}, drawings=2)
    images, keys = read_omniglot(path, verify=False)
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    assert keys == ["Alpha/character01"] * 2 + ["Alpha/character02"] * 2 + ["Beta/character01"] * 2
    # black square top-left (52/105 of the side) becomes white; the rest black
    assert images[0, 5, 5] == 255 and images[0, 20, 20] == 0
    # area resize: the pixel spanning the square's edge (52/3.75 = 13.87) is a grey mix
    assert 0 < images[0, 13, 5] < 255
    sub, sub_keys = read_omniglot(path, [names[-1]], verify=False)
    assert len(sub) == 1 and sub_keys == ["Beta/character01"]


def test_cifar_test_batch_is_grey_luminance_28(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    rgb, labels = make_cifar_tarball(path)
    images, got_labels = read_cifar10_test(path, verify=False)
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(got_labels, labels)
    expected = [round(0.299 * r + 0.587 * g + 0.114 * b) for r, g, b in rgb[:, 0, 0].astype(float)]
    np.testing.assert_array_equal(images[:, 14, 14], expected)  # red 76, green 150, blue 29, ...
    assert expected[:3] == [76, 150, 29]


def test_cifar_corrupt_archive(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"not a tarball")
    with pytest.raises(GradmetaError, match="not a readable CIFAR-10 archive"):
        read_cifar10_test(path, verify=False)
