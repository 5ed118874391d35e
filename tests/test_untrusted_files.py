"""Files a remote or a user hands us, built to hurt: sizes are checked on what a file declares before
anything is read, unused members are never inflated, images convert in bounded memory, a tampered
fitted file names the member that is wrong. Each case fails in one line, with no unsafe advice."""

import gzip
import io
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from archives import idx_bytes
from data_params import data_config
from PIL import Image
from test_detector_pipeline import config as detectors_config
from test_detector_pipeline import model_and_train  # noqa: F401 (a fixture)
from test_meta_persistence import fitted  # noqa: F401 (a fixture)

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import prepare_concept
from gradmeta.datasets.imageops import rgb_to_grey
from gradmeta.meta import load_fitted, save_fitted
from gradmeta.prepared import PreparedData, load_prepared, save_prepared
from gradmeta.uncertainty.detectors import fitted as fitted_detectors
from gradmeta.uncertainty.detectors.base import logits_layer
from gradmeta.uncertainty.detectors.fitted import fit_detectors, load_detectors, save_detectors

KNOWN = {"digits": {"source": "synthetic_digits", "train": 2, "test": 2}}


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # user paths are relative to the repository: here tmp_path


def user(fmt, path, **extra):
    return data_config(KNOWN, user={"u": {"format": fmt, "path": str(path), **extra}})


def prepare_with_peak(cfg):
    """The prepared user concept 'u' and the peak of memory traced while preparing it (bytes)."""
    tracemalloc.start()
    try:
        data = prepare_concept("u", cfg)
        return data, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text and "allow_pickle" not in text and "Traceback" not in text, text
    return text


def npy_header(shape, descr="|u1"):
    """The bytes of an .npy header (format 1.0) that declares ``shape`` and no data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def npz_with(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(f"{name}.npy", data)


def test_an_images_header_declaring_a_trillion_images_is_refused_before_reading():
    npz_with("huge.npz", {"images": npy_header((10**12, 28, 28))})
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("npz", "huge.npz"))
    assert "huge.npz" in one_line(err) and "more than" in str(err.value)


def test_a_prepared_file_whose_header_lies_names_the_file_and_the_array(tmp_path):
    data = PreparedData("c", "npz", "user", np.zeros((2, 28, 28), np.uint8), np.zeros(2), np.array(["test"] * 2),
                        np.arange(2))
    save_prepared("c.npz", data)
    with zipfile.ZipFile("c.npz") as zf:
        members = {i.filename[:-4]: zf.read(i) for i in zf.infolist()}
    members["images"] = npy_header((10**12, 28, 28))
    npz_with("c.npz", members)
    with pytest.raises(GradmetaError) as err:
        load_prepared("c.npz")
    assert "c.npz: not a readable prepared data file (array 'images': its header declares shape" in one_line(err)


def test_an_unused_member_is_never_inflated():
    """300 MB of zeros beside the images compress to 300 KB; reading the concept must not inflate them."""
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, images)
    unused = npy_header((300, 1000, 1000)) + bytes(300 * 1000 * 1000)
    npz_with("mine.npz", {"images": buf.getvalue(), "unused": unused})
    del unused
    data, peak = prepare_with_peak(user("npz", "mine.npz"))
    np.testing.assert_array_equal(data.images, images[data.source_index])
    assert peak < 30e6, f"peak {peak / 1e6:.0f} MB: the unused member was inflated"


def test_a_pickle_posing_as_an_npz_gets_no_unsafe_advice():
    with open("mine.npz", "wb") as f:
        pickle.dump({"images": [1, 2, 3]}, f)
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("npz", "mine.npz"))
    assert "mine.npz: not a readable npz file" in one_line(err) and "pickle" not in str(err.value).lower()


def test_an_image_over_the_pixel_cap_is_refused_unread():
    Path("pics").mkdir()
    Image.new("L", (8192, 8192)).save("pics/big.png")  # 8 KB on disk, 67 M pixels declared
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("folder", "pics"))
    assert "big.png: 8192x8192 pixels; an image may be at most 4096 pixels on a side" in one_line(err)


def test_a_large_colour_image_converts_in_bounded_memory():
    """A 4096x4096 RGB PNG (the largest accepted): float64 RGB of it would be 400 MB."""
    rng = np.random.default_rng(1)
    tile = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb = np.tile(tile, (64, 64, 1))
    Path("pics").mkdir()
    Image.fromarray(rgb).save("pics/photo.png")
    data, peak = prepare_with_peak(user("folder", "pics"))
    # reference: the ITU-R 601 grey of the 64x64 tile, tiled: every 28x28 output box of 146x146
    # pixels averages the same values as PIL's box filter over the whole grey image
    grey = np.tile(rgb_to_grey(tile), (64, 64))
    expected = np.asarray(Image.fromarray(grey).resize((28, 28), Image.Resampling.BOX))
    np.testing.assert_array_equal(data.images[0], expected)
    assert peak < 160e6, f"peak {peak / 1e6:.0f} MB converting one 4096x4096 image"


def test_an_idx_bomb_is_refused_by_its_declared_image_count():
    """1.3 M declared 28x28 images (1 GB) from a gzip of a few bytes: refused before any data is read."""
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 1_300_000, 28, 28)
    with open("bomb-images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip.compress(header + bytes(1 << 20)))
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("idx", "bomb-images-idx3-ubyte.gz"))
    assert "1300000 images declared, more than the 500000 a concept may have" in one_line(err)


def test_idx_images_convert_a_block_at_a_time_and_match_the_whole_array():
    images = np.random.default_rng(2).integers(0, 256, (600, 40, 40), dtype=np.uint8)
    with open("set-images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip.compress(idx_bytes(images)))
    data = prepare_concept("u", user("idx", "set-images-idx3-ubyte.gz"))
    expected = np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.Resampling.BOX)) for im in images])
    np.testing.assert_array_equal(data.images, expected[data.source_index])


# -------------------------------------------------------------------- tampered fitted files
def rewrite_npz(path, change):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.__setitem__("split/0/digits/test", -a["split/0/digits/test"] - 1),
     "array split/0/digits/test holds a negative row position"),
    (lambda a: a.__setitem__("split/0/digits/test", a["split/0/digits/test"] + 10_000),
     "arrays split/0/digits/train and /test are not a split of rows"),
    (lambda a: a.__setitem__("split/0/digits/train", np.concatenate([a["split/0/digits/train"][:-1],
                                                                    a["split/0/digits/train"][:1]])),
     "1 repeated"),
])
def test_tampered_split_positions_are_refused_at_load(fitted, tmp_path, change, message):  # noqa: F811
    _, original = fitted
    save_fitted(tmp_path / "meta.npz", original)
    rewrite_npz(tmp_path / "meta.npz", change)
    with pytest.raises(GradmetaError) as err:
        load_fitted(tmp_path / "meta.npz")
    assert message in one_line(err)


def test_garbage_booster_bytes_name_the_member(fitted, tmp_path):  # noqa: F811
    _, original = fitted
    save_fitted(tmp_path / "meta.npz", original)
    with np.load(tmp_path / "meta.npz") as npz:
        booster = next(k for k in npz.files if k.endswith("/booster_ubj"))
    rewrite_npz(tmp_path / "meta.npz",
                lambda a: a.__setitem__(booster, np.frombuffer(b"{U\x01aU\x01b}" * 4, dtype=np.uint8)))
    with pytest.raises(GradmetaError) as err:
        load_fitted(tmp_path / "meta.npz")
    assert f"array {booster} is not an XGBoost model" in one_line(err) and "manifest" not in str(err.value)


def test_a_nan_in_the_detectors_file_names_the_file_and_the_state(tmp_path, model_and_train):  # noqa: F811
    model, x, y = model_and_train
    cfg = detectors_config()
    save_detectors(tmp_path / "detectors.npz", fit_detectors(model, x, y, cfg, "ab" * 32))

    def poison(arrays):
        key = next(k for k in arrays if k.startswith("mahalanobis/"))
        arrays[key] = arrays[key].copy()
        arrays[key].flat[0] = np.nan
    rewrite_npz(tmp_path / "detectors.npz", poison)
    with pytest.raises(GradmetaError) as err:
        load_detectors(tmp_path / "detectors.npz", logits_layer(model, x[:1]), cfg)
    assert "detectors.npz: damaged state mahalanobis/" in one_line(err) and "1 NaN or infinite values" in str(err.value)


@pytest.mark.parametrize("params, message", [
    ({"vim": {"dim": 5000}}, "params.yaml: detectors.vim.dim must be in [1, 15] (the model's penultimate layer has 16"),
    ({"knn": {"k": 30000, "bank_size": None, "seed": 0}}, "params.yaml: detectors.knn.k must be at most the 120 train"),
])
def test_impossible_detector_sizes_are_refused_before_any_feature_is_computed(model_and_train, monkeypatch,  # noqa: F811
                                                                             params, message):
    model, x, y = model_and_train

    def no_work(*args, **kwargs):
        raise AssertionError("features computed before the sizes were checked")
    monkeypatch.setattr(fitted_detectors, "features_of", no_work)
    with pytest.raises(GradmetaError) as err:
        fit_detectors(model, x, y, detectors_config(**params), "ab" * 32)
    assert message in one_line(err)


def test_read_npz_returns_only_the_names_asked_for():
    from gradmeta.core.npzfile import read_npz

    np.savez("a.npz", x=np.arange(3), y=np.ones((2, 2)), z=np.zeros(1))
    got = read_npz("a.npz", "test file", "make it first", names=["x"], optional=["y", "w"])
    assert sorted(got) == ["x", "y"]
    np.testing.assert_array_equal(got["x"], np.arange(3))
    with pytest.raises(GradmetaError, match=r"a.npz: not a readable test file \(no array 'w'; it holds x, y, z\)"):
        read_npz("a.npz", "test file", "make it first", names=["w"])
    with pytest.raises(GradmetaError, match=r"b.npz: test file not found \(make it first\)"):
        read_npz("b.npz", "test file", "make it first", names=["x"])
