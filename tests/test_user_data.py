"""The user's own data as a concept: npz, IDX and image folders, against hand-computed images."""

import gzip

import numpy as np
import pytest
from archives import idx_bytes
from data_params import data_config
from PIL import Image

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import prepare_concept

KNOWN = {"digits": {"source": "synthetic_digits", "train": 2, "test": 2}}


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """User paths are relative to the repository the pipeline runs in: here, tmp_path."""
    monkeypatch.chdir(tmp_path)


def rel(path):
    return str(path.relative_to(path.cwd()))


def user_config(**user):
    return data_config(KNOWN, user=user)


def test_npz_grey_uint8_28_is_taken_as_is_with_labels_and_a_seeded_split(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 28, 28)).astype(np.uint8)
    labels = np.arange(10) % 3
    np.savez(tmp_path / "mine.npz", images=images, labels=labels)
    cfg = user_config(mine={"format": "npz", "path": "mine.npz", "train": 6, "test": None})
    data = prepare_concept("mine", cfg)
    assert (data.source, data.kind) == ("npz", "user")
    assert list(data.split) == ["train"] * 6 + ["test"] * 4
    assert sorted(data.source_index) == list(range(10))  # every image once, train and test disjoint
    np.testing.assert_array_equal(data.images, images[data.source_index])
    np.testing.assert_array_equal(data.labels, labels[data.source_index])
    import hashlib
    assert data.provenance["user_data"]["sha256"] == hashlib.sha256((tmp_path / "mine.npz").read_bytes()).hexdigest()
    assert data.provenance["description"].startswith("your own data (npz at ")
    again = prepare_concept("mine", cfg)
    np.testing.assert_array_equal(again.source_index, data.source_index)


def test_npz_colour_floats_of_another_size_become_grey_28(tmp_path):
    # 56x56 colour: left half pure red, right half pure blue, floats in [0, 1]
    img = np.zeros((56, 56, 3))
    img[:, :28, 0] = 1.0
    img[:, 28:, 2] = 1.0
    np.savez(tmp_path / "c.npz", images=img[None])
    data = prepare_concept("c", user_config(c={"format": "npz", "path": "c.npz"}))
    assert data.images.shape == (1, 28, 28) and (data.labels == -1).all()
    # ITU-R 601: red -> round(0.299 * 255) = 76, blue -> round(0.114 * 255) = 29; 2x2 boxes stay pure
    assert (data.images[0, :, :14] == 76).all() and (data.images[0, :, 14:] == 29).all()


def test_idx_folder_with_labels_and_a_plain_idx_file(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "my-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (folder / "my-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    data = prepare_concept("s", user_config(s={"format": "idx", "path": rel(folder)}))
    np.testing.assert_array_equal(data.images, images[data.source_index])
    np.testing.assert_array_equal(data.labels, labels[data.source_index])
    plain = tmp_path / "only-images.idx"
    plain.write_bytes(idx_bytes(images))
    data = prepare_concept("p", user_config(p={"format": "idx", "path": rel(plain), "invert": True}))
    np.testing.assert_array_equal(data.images, 255 - images[data.source_index])
    assert (data.labels == -1).all()


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_folder_with_class_subfolders_sizes_colours_and_invert(tmp_path):
    root = tmp_path / "drawings"
    white = np.full((40, 40), 255, np.uint8)
    black_square = white.copy()
    black_square[:20, :20] = 0  # black top-left quarter on white
    _png(root / "cat" / "a.png", black_square)
    rgb = np.stack([black_square] * 3, axis=-1)
    (root / "dog").mkdir()
    Image.fromarray(rgb).save(root / "dog" / "b.jpg", quality=100)
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:20, :20] = (0, 0, 0, 255)  # black top-left quarter, the rest transparent
    _png(root / "dog" / "c.png", rgba, "RGBA")
    data = prepare_concept("d", user_config(d={"format": "folder", "path": rel(root), "invert": True}))
    assert data.images.shape == (3, 28, 28)
    by_index = dict(zip(data.source_index, data.labels))
    assert by_index == {0: 0, 1: 1, 2: 1}  # cat/a.png, dog/b.jpg, dog/c.png; classes in sorted order
    assert data.provenance["user_data"]["classes"] == ["cat", "dog"] and data.provenance["user_data"]["files"] == 3
    for img in data.images:  # inverted: white square top-left on black (JPEG within a few levels)
        assert img[:13, :13].min() >= 240 and img[15:, 15:].max() <= 15


def test_folder_non_square_images_are_padded_with_the_background(tmp_path):
    _png(tmp_path / "f" / "wide.png", np.full((14, 28), 200, np.uint8))
    data = prepare_concept("w", user_config(w={"format": "folder", "path": "f"}))
    img = data.images[0]
    assert (img[:7] == 0).all() and (img[21:] == 0).all() and (img[7:21] == 200).all()
    assert (data.labels == -1).all()  # images directly in the folder: no classes


@pytest.mark.parametrize("make, fmt, message", [
    (lambda p: None, "npz", "does not exist"),
    (lambda p: p.mkdir(), "folder", "no images (.png, .jpg, .jpeg) in the folder"),
    (lambda p: (p.mkdir(), (p / "x.png").write_bytes(b"not a png")), "folder", "x.png: cannot decode the image"),
    (lambda p: np.savez(p, pictures=np.zeros((2, 28, 28), np.uint8)), "npz", "no array 'images' (found pictures)"),
    (lambda p: np.savez(p, images=np.zeros((2, 28, 28, 4), np.uint8)), "npz", "expected (N, H, W) grey or (N, H, W, 3)"),
    (lambda p: np.savez(p, images=np.zeros((2, 28), np.uint8)), "npz", "expected (N, H, W) grey"),
    (lambda p: np.savez(p, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(2, int)), "npz",
     "2 labels (shape (2,)) for 3 images"),
    (lambda p: np.savez(p, images=np.full((1, 28, 28), 2.0)), "npz", "must be uint8, or floats in [0, 1]"),
])
def test_bad_user_data_gives_one_line_naming_it(tmp_path, make, fmt, message):
    path = tmp_path / ("data.npz" if fmt == "npz" else "data")
    make(path)
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user_config(u={"format": fmt, "path": rel(path)}))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("user, message", [
    ({"format": "csv", "path": "x"}, "data.user_concepts.u.format must be one of npz, idx, folder"),
    ({"format": "npz"}, "data.user_concepts.u.path is missing"),
    ({"format": "npz", "path": "x", "train": None}, "data.user_concepts.u.train must be a number"),
    ({"format": "npz", "path": "x", "inverted": True}, "data.user_concepts.u.inverted is not a parameter; did you mean"),
])
def test_bad_user_concept_params(user, message):
    with pytest.raises(GradmetaError) as err:
        user_config(u=user)
    assert message in str(err.value), str(err.value)


def test_a_user_concept_named_like_a_built_in_one_is_refused():
    with pytest.raises(GradmetaError, match="data.user_concepts.digits: this concept is already defined"):
        user_config(digits={"format": "npz", "path": "x"})


def test_too_few_images_for_the_train_split(tmp_path):
    np.savez(tmp_path / "m.npz", images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, int))
    with pytest.raises(GradmetaError, match="3 images are too few for 3 train images"):
        prepare_concept("m", user_config(m={"format": "npz", "path": "m.npz", "train": 3}))


def test_a_path_outside_the_repository_is_refused_naming_the_key(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    np.savez(tmp_path / "outside.npz", images=np.zeros((3, 28, 28), np.uint8))
    (repo / "link.npz").symlink_to(tmp_path / "outside.npz")
    cases = [("/etc/passwd", "is absolute"), ("../outside.npz", "outside the repository"),
             ("link.npz", "outside the repository")]
    monkeypatch.chdir(repo)
    for path, message in cases:
        with pytest.raises(GradmetaError) as err:
            prepare_concept("u", user_config(u={"format": "npz", "path": path}))
        text = str(err.value)
        assert "params.yaml: data.user_concepts.u.path" in text and message in text and "\n" not in text, text
        assert "data.user_concepts.u.outside_repo: true" in text
    # said explicitly, the same file is read
    data = prepare_concept("u", user_config(u={"format": "npz", "path": "../outside.npz", "outside_repo": True}))
    assert len(data) == 3


def test_a_folder_holding_a_symlink_out_of_the_repository_is_refused(tmp_path, monkeypatch):
    Image.new("L", (28, 28)).save(tmp_path / "secret.png")
    (tmp_path / "repo" / "pics").mkdir(parents=True)
    Image.new("L", (28, 28)).save(tmp_path / "repo" / "pics" / "a.png")
    (tmp_path / "repo" / "pics" / "b.png").symlink_to(tmp_path / "secret.png")
    monkeypatch.chdir(tmp_path / "repo")
    with pytest.raises(GradmetaError, match=r"pics/b.png resolves to .*secret.png, outside the repository"):
        prepare_concept("u", user_config(u={"format": "folder", "path": "pics"}))


def test_a_missing_user_file_names_the_concept_the_path_and_the_fix(tmp_path):
    with pytest.raises(GradmetaError) as err:
        prepare_concept("mine", user_config(mine={"format": "npz", "path": "user_data/mine.npz"}))
    text = str(err.value)
    assert text.startswith("params.yaml: data.user_concepts.mine.path: user_data/mine.npz does not exist "
                           "(user concept 'mine')") and "`dvc add user_data/mine.npz`" in text and "\n" not in text
    (tmp_path / "user_data").mkdir()
    (tmp_path / "user_data" / "mine.npz.dvc").write_text("outs:\n- md5: 0\n  path: mine.npz\n")
    with pytest.raises(GradmetaError, match=r"tracked by DVC: `dvc pull user_data/mine.npz.dvc` fetches it"):
        prepare_concept("mine", user_config(mine={"format": "npz", "path": "user_data/mine.npz"}))


def test_an_image_holding_nan_says_nan(tmp_path):
    images = np.full((2, 28, 28), 0.5)
    images[1, 3, 4] = np.nan
    np.savez(tmp_path / "n.npz", images=images)
    with pytest.raises(GradmetaError, match=r"n.npz: images\[1\]: the image holds NaN"):
        prepare_concept("n", user_config(n={"format": "npz", "path": "n.npz"}))


def test_the_report_line_of_an_idx_concept_shows_a_sha256_of_its_files(tmp_path):
    import hashlib

    from gradmeta.evaluation.provenance import concept_line
    images = np.random.default_rng(3).integers(0, 256, (4, 28, 28)).astype(np.uint8)
    labels = np.array([0, 1, 0, 1], dtype=np.uint8)
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "set" / "a-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    data = prepare_concept("s", user_config(s={"format": "idx", "path": "set"}))
    lines = "".join(f"{hashlib.sha256((tmp_path / 'set' / n).read_bytes()).hexdigest()}  {n}\n"
                    for n in ("a-images-idx3-ubyte", "a-labels-idx1-ubyte"))  # as sha256sum prints them
    expected = hashlib.sha256(lines.encode()).hexdigest()
    line = concept_line("s", {"kind": "user", "provenance": data.provenance}, "digits")
    assert f"`set` (idx), sha256 {expected[:16]}…" in line, line
