"""Images beyond 28x28 grey: one geometry per pipeline, set by the known concept (or data.image), every
concept converted to it the way the field does it; CIFAR-10 in colour (train and test batches) and its
stand-in; user data keeping its colour; a colour pipeline from download to report."""

import re

import numpy as np
import pytest
from archives import cifar_train_batches, make_cifar_tarball, make_emnist_zip
from data_params import data_config
from http_server import serve
from PIL import Image
from stage_runner import TINY, run_stage, write_params
from test_sources import fixture_specs, real_config, serve_folder
from test_stage_errors import assert_one_line_error

from gradmeta.cnn import to_tensor
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import load_prepared, prepare_concept
from gradmeta.datasets.imageops import to_geometry
from gradmeta.geometry import Geometry
from gradmeta.prepared import PreparedData

COLOUR = Geometry(32, 32, 3)


def test_grey_to_colour_repeats_the_value_and_colour_to_grey_is_luminance():
    grey = np.array([[[0, 10], [200, 255]]], dtype=np.uint8)
    colour = to_geometry(grey, Geometry(2, 2, 3))
    assert colour.shape == (1, 2, 2, 3) and (colour == grey[..., None]).all()
    rgb = np.array([[[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]], dtype=np.uint8)
    expected = [[round(0.299 * 255), round(0.587 * 255)], [round(0.114 * 255), round(0.299 * 10 + 0.587 * 20 + 0.114 * 30)]]
    np.testing.assert_array_equal(to_geometry(rgb, Geometry(2, 2, 1))[0], expected)


def test_resizing_is_by_area():
    image = np.array([[[0, 100, 20, 20], [200, 100, 40, 40]]], dtype=np.uint8)  # (1, 2, 4)
    np.testing.assert_array_equal(to_geometry(image, Geometry(1, 2, 1))[0], [[100, 30]])  # means of 2x2 areas
    up = to_geometry(np.array([[[7, 9]]], dtype=np.uint8), Geometry(2, 4, 1))[0]
    np.testing.assert_array_equal(up, [[7, 7, 9, 9], [7, 7, 9, 9]])  # enlarging repeats each pixel over its area


def test_images_already_in_the_geometry_are_passed_as_they_are():
    images = np.zeros((3, 28, 28), np.uint8)
    assert to_geometry(images, Geometry()) is images


def test_to_tensor_puts_channels_first():
    rgb = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    x = to_tensor(rgb)
    assert x.shape == (2, 3, 3, 4) and x[1, 2, 0, 3].item() == pytest.approx(rgb[1, 0, 3, 2] / 255)
    assert to_tensor(rgb[..., 0]).shape == (2, 1, 3, 4)


def test_a_prepared_file_of_another_rank_is_refused():
    with pytest.raises(ValueError, match="expected \\(N, H, W\\) grey or \\(N, H, W, 3\\) colour"):
        PreparedData("x", "npz", "user", np.zeros((2, 8, 8, 2), np.uint8), np.zeros(2), np.full(2, "test"),
                     np.arange(2))


@pytest.fixture
def cifar_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    make_cifar_tarball(src / "cifar-10-python.tar.gz", n=7, train_per_batch=4)
    make_emnist_zip(src / "gzip.zip", {("digits", "train"): 10, ("digits", "test"): 6, ("letters", "test"): 8})
    fixture_specs(src, monkeypatch)
    return src


def test_cifar10_in_colour_reads_its_train_and_test_batches(tmp_path, cifar_archive):
    expected_train, expected_labels = cifar_train_batches(cifar_archive / "cifar-10-python.tar.gz")
    concepts = {"cifar10": {"source": "cifar10", "train": None, "test": None},
                "digits": {"source": "emnist_digits", "test": 6}}
    with serve() as srv:
        serve_folder(srv, cifar_archive)
        cfg = real_config(tmp_path, srv.base, concepts, known="cifar10")
        assert cfg.geometry == COLOUR  # the known concept's own geometry
        cifar, digits = prepare_concept("cifar10", cfg), prepare_concept("digits", cfg)
    train = cifar.select("train")
    assert train.images.shape == (20, 32, 32, 3) and cifar.select("test").images.shape == (7, 32, 32, 3)
    np.testing.assert_array_equal(train.images, expected_train)
    np.testing.assert_array_equal(train.labels, expected_labels)
    assert digits.images.shape == (6, 32, 32, 3)  # grey digits made colour and 32x32 on the way in
    assert (digits.images[..., 0] == digits.images[..., 2]).all()


def test_data_image_overrides_the_geometry_and_is_checked():
    cfg = data_config({"digits": {"source": "emnist_digits", "train": 20, "test": 10}}, image={"size": [16, 20],
                                                                                               "channels": 3})
    assert cfg.geometry == Geometry(16, 20, 3)
    digits = prepare_concept("digits", cfg)
    assert digits.images.shape == (30, 16, 20, 3)
    for image, message in [({"size": [0, 32], "channels": 3}, "data.image.size must be a non-empty list of integers"),
                           ({"size": [32], "channels": 3}, "data.image.size must be [height, width]"),
                           ({"size": [32, 32], "channels": 2}, "data.image.channels must be 1 (grey) or 3 (RGB)"),
                           ({"size": [32, 32], "channels": "rgb"}, "data.image.channels must be a positive integer and <= 3")]:
        with pytest.raises(GradmetaError, match=re.escape(message)):
            data_config({"digits": {"source": "emnist_digits", "train": 20, "test": 10}}, image=image)


def test_the_colour_stand_in_is_balanced_learnable_and_labelled_as_a_stand_in():
    cfg = data_config({"cifar10": {"source": "cifar10", "train": 200, "test": 50}}, known="cifar10")
    data = prepare_concept("cifar10", cfg)
    assert data.kind == "synthetic" and data.images.shape == (250, 32, 32, 3)
    assert "standing in for CIFAR-10" in data.provenance["description"]
    assert np.bincount(data.select("train").labels).tolist() == [20] * 10
    # a class is a hue: the mean colour of each class's pixels differs from every other class's
    means = np.stack([data.images[data.labels == c].reshape(-1, 3).mean(0) for c in range(10)])
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(10) for j in range(i)) > 1.0


def test_user_images_keep_their_colour_in_a_colour_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics").mkdir()
    Image.fromarray(np.full((64, 64, 3), (200, 30, 10), np.uint8)).save("pics/red.png")
    Image.fromarray(np.full((16, 32, 3), (10, 30, 200), np.uint8)).save("pics/wide.png")  # padded to a square
    cfg = data_config({"cifar10": {"source": "cifar10", "train": 20, "test": 10}}, known="cifar10",
                      user={"mine": {"format": "folder", "path": "pics"}})
    images = prepare_concept("mine", cfg).images
    assert images.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(images[0, 16, 16], (200, 30, 10))
    np.testing.assert_array_equal(images[1, 16, 16], (10, 30, 200))
    assert (images[1, :7] == 0).all() and (images[1, 9:23, :, 2] == 200).all()  # black bands above and below


COLOUR_PIPELINE = {
    "data": {"known": "cifar10", "concepts": {"cifar10": {"source": "cifar10", "train": 400, "test": 60},
                                              "digits": {"source": "emnist_digits", "test": 60},
                                              "noise": {"source": "uniform_noise", "test": 60}}},
    "train": {"epochs": 2, "architecture": {"kind": "small_resnet", "widths": [8, 32], "blocks": [1, 1],
                                            "in_channels": 3, "image_size": 32}},
    "detectors": {"use": [d for d in TINY["detectors"]["use"] if d != "mc_dropout"]},
    "evaluate": {"remote_concepts": ["noise"], "min_accuracy": 0.0},
}


@pytest.mark.slow
def test_a_colour_pipeline_runs_every_stage_to_the_report(tmp_path):
    write_params(tmp_path / "params.yaml", **COLOUR_PIPELINE)
    for concept in ("cifar10", "digits", "noise"):
        assert run_stage("download", tmp_path, "--concept", concept).returncode == 0
    assert load_prepared(tmp_path / "data/prepared/digits.npz").images.shape == (60, 32, 32, 3)
    assert Image.open(tmp_path / "metrics/samples/cifar10.png").mode == "RGB"
    for stage in ("train", "detectors"):
        proc = run_stage(stage, tmp_path)
        assert proc.returncode == 0, proc.stderr
    for concept in ("cifar10", "digits", "noise"):
        proc = run_stage("extract", tmp_path, "--concept", concept)
        assert proc.returncode == 0, proc.stderr
    for stage in ("meta", "evaluate"):
        proc = run_stage(stage, tmp_path)
        assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "metrics/report.md").read_text()
    assert "SYNTHETIC stand-in" in report and "CIFAR-like colour objects" in report
    assert "**Model:** `small_resnet`, trained by the pipeline." in report


def test_an_architecture_that_does_not_take_the_images_is_one_line(tmp_path):
    write_params(tmp_path / "params.yaml", data=COLOUR_PIPELINE["data"],
                 train={"architecture": {"kind": "small_resnet", "in_channels": 1}})
    assert run_stage("download", tmp_path, "--concept", "cifar10").returncode == 0
    assert_one_line_error(run_stage("train", tmp_path), "the images are 32x32 RGB", "train.architecture.in_channels "
                          "is 1; set it to 3")
