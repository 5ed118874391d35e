"""OpenOOD's near- and far-OOD sets from fixture archives in their publishers' formats, served from
127.0.0.1: CIFAR-100, SVHN (MATLAB v5), Textures (DTD), TinyImageNet-200, Places365, MNIST made 32x32 RGB;
image lists; their stand-ins; hostile archives."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
from archives import (
    add_bytes,
    make_cifar100_tarball,
    make_cifar_tarball,
    make_dtd_tarball,
    make_idx_dataset,
    make_places_archives,
    make_svhn_mat,
    make_tin_zip,
)
from data_params import data_config
from http_server import serve
from PIL import Image
from test_sources import fixture_specs, real_config, serve_folder

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import prepare_concept
from gradmeta.datasets.members import crop_resize
from gradmeta.datasets.svhn import read_svhn

TIN_WNIDS = ["n01443537", "n02123045", "n09999999"]  # the second is a tabby cat: a CIFAR-10 class, left out
DTD_CLASSES = {"banded": 3, "zigzagged": 2}


@pytest.fixture
def ood_archives(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    truth = {"cifar100": make_cifar100_tarball(src / "cifar-100-python.tar.gz", {"train": 12, "test": 9})}
    (src / "svhn").mkdir()
    truth["svhn"] = make_svhn_mat(src / "svhn/test_32x32.mat", 13)
    truth["dtd"] = make_dtd_tarball(src / "dtd-r1.0.1.tar.gz", DTD_CLASSES)
    truth["tin"] = make_tin_zip(src / "tiny-imagenet-200.zip", TIN_WNIDS, per_class=2)
    truth["places"] = make_places_archives(src / "places365", 6)
    make_cifar_tarball(src / "cifar-10-python.tar.gz", n=7, train_per_batch=4)
    truth["mnist"] = make_idx_dataset(src / "mnist", {"train": 11, "test": 8}, seed=2)
    fixture_specs(src, monkeypatch)
    return src, truth


CONCEPTS = {"cifar10": {"source": "cifar10", "train": None, "test": None},
            "cifar100": {"source": "cifar100", "train": None, "test": None}, "svhn": {"source": "svhn", "test": None},
            "texture": {"source": "textures", "test": None}, "tin": {"source": "tinyimagenet", "test": None},
            "places365": {"source": "places365", "test": None}, "mnist": {"source": "mnist", "test": None}}


def prepared(tmp_path, src, concepts=CONCEPTS, names=None):
    with serve() as srv:
        serve_folder(srv, src)
        cfg = real_config(tmp_path, srv.base, concepts, known="cifar10")
        return {c: prepare_concept(c, cfg) for c in (names or concepts)}


def test_cifar100_and_svhn_read_as_published(tmp_path, ood_archives):
    src, truth = ood_archives
    out = prepared(tmp_path, src, names=["cifar100", "svhn"])
    c100 = out["cifar100"]
    for split in ("train", "test"):
        images, labels = truth["cifar100"][split]
        np.testing.assert_array_equal(c100.select(split).images, images)
        np.testing.assert_array_equal(c100.select(split).labels, labels)
    images, digits = truth["svhn"]
    np.testing.assert_array_equal(out["svhn"].images, images)
    np.testing.assert_array_equal(out["svhn"].labels, digits)  # the file's 10 is the digit 0
    assert (out["svhn"].labels == 0).sum() == 2 and out["svhn"].source == "svhn"


def test_photographs_are_centre_cropped_and_resized_to_the_pipeline(tmp_path, ood_archives):
    src, truth = ood_archives
    out = prepared(tmp_path, src, names=["texture", "tin", "places365"])
    texture = out["texture"]
    assert texture.images.shape == (5, 32, 32, 3) and list(texture.labels) == [0, 0, 0, 1, 1]
    for image, name, label in zip(texture.images, truth["dtd"], texture.labels):
        k = int(name.rsplit("_", 1)[1][:4])
        assert np.abs(image.astype(int) - [40 * label + 10, 8 * k, 200]).max() <= 3  # a flat JPEG, within its error
    tin = out["tin"]
    kept = sorted((f, w) for f, w in truth["tin"] if w != "n02123045")
    assert len(tin) == 4 and tin.images.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(tin.labels, [sorted(TIN_WNIDS).index(w) for _, w in kept])
    for image, (f, _) in zip(tin.images, kept):
        assert np.abs(image.astype(int) - 5 * int(f[4:-5])).max() <= 2
    places = out["places365"]
    np.testing.assert_array_equal(places.labels, truth["places"])
    assert np.abs(places.images[3].astype(int) - [30, 100, 50]).max() <= 3


def test_mnist_is_made_32x32_rgb_by_area(tmp_path, ood_archives):
    src, truth = ood_archives
    mnist = prepared(tmp_path, src, names=["mnist"])["mnist"]
    grey = truth["mnist"]["test"][0]
    expected = np.stack([np.asarray(Image.fromarray(g).resize((32, 32), Image.Resampling.BOX)) for g in grey])
    assert mnist.images.shape == (8, 32, 32, 3)
    for channel in range(3):
        np.testing.assert_array_equal(mnist.images[..., channel], expected)


def test_crop_resize_takes_the_centre_at_the_target_aspect():
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 2:6] = 100  # the centre 4x4 square
    np.testing.assert_array_equal(crop_resize(image, 2, 2), np.full((2, 2, 3), 100))
    tall = np.arange(6 * 2 * 3, dtype=np.uint8).reshape(6, 2, 3)
    np.testing.assert_array_equal(crop_resize(tall, 2, 2), tall[2:4])


def write_list(root, name, lines):
    folder = root / "user_data/image_lists"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(f"{line}\n" for line in lines))
    return f"user_data/image_lists/{name}"


def test_an_image_list_selects_exactly_the_images_it_names(tmp_path, ood_archives, monkeypatch):
    src, truth = ood_archives
    monkeypatch.chdir(tmp_path)
    arrays = write_list(tmp_path, "c100.txt", ["cifar100/test/3.png 0", "", "test/00005.png 7"])
    files = write_list(tmp_path, "texture.txt", ["images_classic/texture/banded/banded_0001.jpg -1",
                                                 "texture/zigzagged/zigzagged_0000.jpg -1"])
    concepts = {"cifar10": CONCEPTS["cifar10"], "cifar100": {"source": "cifar100", "test": None, "image_list": arrays},
                "texture": {"source": "textures", "test": None, "image_list": files}}
    out = prepared(tmp_path, src, concepts, names=["cifar100", "texture"])
    np.testing.assert_array_equal(out["cifar100"].source_index, [3, 5])
    np.testing.assert_array_equal(out["cifar100"].images, truth["cifar100"]["test"][0][[3, 5]])
    np.testing.assert_array_equal(out["texture"].source_index, [1, 3])  # banded_0001, zigzagged_0000
    np.testing.assert_array_equal(out["texture"].labels, [0, 1])
    concepts["texture"]["test"] = 1  # a seeded subset of the listed images
    assert prepared(tmp_path, src, concepts, names=["texture"])["texture"].source_index[0] in (1, 3)


@pytest.mark.parametrize("lines, message", [
    (["texture/banded/banded_0099.jpg 0"], "names 'texture/banded/banded_0099.jpg', which dtd-r1.0.1.tar.gz lacks"),
    (["texture/banded/banded_0001.jpg"], "line 1: expected '<relative path> <integer label>'"),
    (["a.jpg 0", "../x.jpg 0"], "line 2: expected"),
    (["banded/banded_0001.jpg 0", "texture/banded/banded_0001.jpg 0"], "names dtd/images/banded/banded_0001.jpg twice"),
])
def test_a_bad_image_list_fails_with_one_line(tmp_path, ood_archives, monkeypatch, lines, message):
    src, _ = ood_archives
    monkeypatch.chdir(tmp_path)
    path = write_list(tmp_path, "bad.txt", lines)
    concepts = {"cifar10": CONCEPTS["cifar10"], "texture": {"source": "textures", "test": None, "image_list": path}}
    with pytest.raises(GradmetaError, match="bad.txt") as err:
        prepared(tmp_path, src, concepts, names=["texture"])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_image_list_must_live_in_user_data_and_fits_only_an_archive(tmp_path, ood_archives, monkeypatch):
    src, _ = ood_archives
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere.txt").write_text("test/1.png 0\n")
    concepts = {"cifar10": CONCEPTS["cifar10"], "svhn": {"source": "svhn", "test": None, "image_list": "elsewhere.txt"}}
    with pytest.raises(GradmetaError, match="image_list must lie in user_data/image_lists/"):
        prepared(tmp_path, src, concepts, names=["svhn"])
    with pytest.raises(GradmetaError, match="data.concepts.svhn.image_list.*a stand-in has its own images"):
        data_config({"cifar10": {"source": "cifar10", "train": 5, "test": 5},
                     "svhn": {"source": "svhn", "test": 5, "image_list": "user_data/image_lists/x.txt"}}, known="cifar10")


def test_stand_ins_look_like_their_kind_and_say_so():
    concepts = {"cifar10": {"source": "cifar10", "train": 20, "test": 10},
                **{name: {"source": source, "test": 90} for name, source in (
                    ("cifar100", "cifar100"), ("tin", "tinyimagenet"), ("svhn", "svhn"), ("texture", "textures"),
                    ("places365", "places365"), ("mnist", "mnist"))}}
    cfg = data_config(concepts, known="cifar10")
    again = data_config(concepts, known="cifar10", seed=1)
    ranges = {"cifar100": 90, "tin": 100, "svhn": 10, "texture": 6, "mnist": 10}
    for name in ranges | {"places365": 0}:
        data = prepare_concept(name, cfg)
        assert data.kind == "synthetic" and "standing in for" in data.provenance["description"]
        assert data.images.shape == (90, 32, 32, 3) and data.images.std() > 10
        if name in ranges:
            assert 0 <= data.labels.min() and data.labels.max() < ranges[name]
        np.testing.assert_array_equal(prepare_concept(name, cfg).images, data.images)  # deterministic
        assert not np.array_equal(prepare_concept(name, again).images, data.images)  # seeded
    svhn = prepare_concept("svhn", cfg).images.astype(int)
    assert (np.abs(svhn[..., 0] - svhn[..., 1]).mean()) > 5  # colour, not grey digits


def tar_with(member: tarfile.TarInfo, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        add_bytes(tf, "dtd/images/banded/banded_0000.jpg", b"\xff\xd8 not really")
        tf.addfile(member, io.BytesIO(payload) if payload else None)
    return buf.getvalue()


def hostile_members():
    absolute = tarfile.TarInfo("/tmp/evil.jpg")
    absolute.size = 1
    dotdot = tarfile.TarInfo("dtd/images/../../../evil.jpg")
    dotdot.size = 1
    link = tarfile.TarInfo("dtd/images/banded/link.jpg")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("dtd/images/banded/hard.jpg")
    hard.type, hard.linkname = tarfile.LNKTYPE, "../../outside"
    return [(absolute, b"x", "an absolute path"), (dotdot, b"x", "a '..' component"),
            (link, b"", "a symbolic link to '/etc/passwd'"), (hard, b"", "a hard link")]


@pytest.mark.parametrize("member, payload, why", hostile_members(), ids=["absolute", "dotdot", "symlink", "hardlink"])
def test_a_tar_member_that_would_land_outside_the_cache_refuses_the_archive(tmp_path, ood_archives, member,
                                                                           payload, why):
    src, _ = ood_archives
    (src / "dtd-r1.0.1.tar.gz").write_bytes(tar_with(member, payload))
    fixture_specs(src, pytest.MonkeyPatch())
    with pytest.raises(GradmetaError) as err:
        prepared(tmp_path, src, names=["texture"])
    text = str(err.value)
    assert "dtd-r1.0.1.tar.gz" in text and member.name in text and why in text and "\n" not in text
    assert not any(p.name == "evil.jpg" for p in tmp_path.rglob("*")) and not (tmp_path.parent / "evil.jpg").exists()


def test_a_zip_member_outside_the_cache_or_a_link_refuses_the_archive(tmp_path, ood_archives):
    src, _ = ood_archives
    for name, attr, why in (("tiny-imagenet-200/../../evil.JPEG", 0, "a '..' component"),
                            ("tiny-imagenet-200/val/images/link.JPEG", (0o120777 << 16), "a symbolic link")):
        make_tin_zip(src / "tiny-imagenet-200.zip", TIN_WNIDS, per_class=1)
        with zipfile.ZipFile(src / "tiny-imagenet-200.zip", "a") as zf:
            info = zipfile.ZipInfo(name)
            info.external_attr = attr
            zf.writestr(info, "/etc/passwd")
        fixture_specs(src, pytest.MonkeyPatch())
        with pytest.raises(GradmetaError) as err:
            prepared(tmp_path / name[-8:], src, names=["tin"])
        assert "tiny-imagenet-200.zip" in str(err.value) and name in str(err.value) and why in str(err.value)


def test_a_corrupt_jpeg_inside_an_archive_is_one_line_naming_it(tmp_path, ood_archives):
    src, _ = ood_archives
    good = make_dtd_tarball(tmp_path / "good.tar.gz", {"banded": 1})
    assert good == ["dtd/images/banded/banded_0000.jpg"]
    make_dtd_tarball(src / "dtd-r1.0.1.tar.gz", {"banded": 1},
                     extra={"dtd/images/banded/broken.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 40})
    fixture_specs(src, pytest.MonkeyPatch())
    with pytest.raises(GradmetaError, match=r"dtd-r1.0.1.tar.gz: cannot decode member dtd/images/banded/broken.jpg"):
        prepared(tmp_path, src, names=["texture"])


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "not a readable MATLAB v5 file"),
    (lambda b: b"MATLAB 7.3 MAT-file, Platform: x" + b" " * 92 + b"\x00\x02IM" + b[128:], "version 0x200"),
    (lambda b: b"\x89HDF\r\n" + b[6:], "not a MATLAB v5 MAT-file"),
])
def test_a_damaged_mat_is_one_line(tmp_path, damage, message):
    path = tmp_path / "test_32x32.mat"
    make_svhn_mat(path, 5)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(GradmetaError, match=message) as err:
        read_svhn(path, verify=False)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_mat_with_arrays_of_the_wrong_shape_is_refused(tmp_path):
    from scipy.io import savemat

    path = tmp_path / "test_32x32.mat"
    savemat(path, {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8)})
    with pytest.raises(GradmetaError, match=r"array X is uint8 \(28, 28, 3, 2\); SVHN's is uint8 \(32, 32, 3, N\)"):
        read_svhn(path, verify=False)
    savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((3, 1), np.uint8)})
    with pytest.raises(GradmetaError, match="array y"):
        read_svhn(path, verify=False)
    savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [11]], np.uint8)})
    with pytest.raises(GradmetaError, match="outside the digits 1-10"):
        read_svhn(path, verify=False)
    savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    with pytest.raises(GradmetaError, match="holds no y array"):
        read_svhn(path, verify=False)


def test_a_failed_download_leaves_nothing_under_the_archive_name(tmp_path, ood_archives):
    src, _ = ood_archives
    with serve() as srv:
        serve_folder(srv, src)
        srv.files["svhn/test_32x32.mat"] = srv.files["svhn/test_32x32.mat"][:1000]  # cut short: a checksum mismatch
        cfg = real_config(tmp_path, srv.base, {"cifar10": CONCEPTS["cifar10"], "svhn": CONCEPTS["svhn"]},
                          known="cifar10")
        with pytest.raises(GradmetaError, match="checksum mismatch"):
            prepare_concept("svhn", cfg)
    assert [p.name for p in (tmp_path / "raw").rglob("*") if p.is_file()] == []
