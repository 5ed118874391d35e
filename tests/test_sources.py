"""The registry end to end: real archives served from 127.0.0.1, and the synthetic generators."""

import hashlib

import numpy as np
import pytest
from archives import make_cifar_tarball, make_emnist_zip, make_omniglot_zip
from http_server import serve

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import DataConfig, prepare_concept, registry
from gradmeta.datasets.download import ArchiveSpec

SIZES = {"digits_train": 4, "digits_test": 3, "letters": 5, "omniglot": 5, "cifar10": 4, "noise": 6}


@pytest.fixture
def fixture_archives(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    make_emnist_zip(src / "gzip.zip", {("digits", "train"): 10, ("digits", "test"): 6, ("letters", "test"): 8})
    make_omniglot_zip(src / "images_background.zip", "images_background", {"A": 2}, drawings=2)
    make_omniglot_zip(src / "images_evaluation.zip", "images_evaluation", {"B": 1}, drawings=2)
    make_cifar_tarball(src / "cifar-10-python.tar.gz", n=7)
    specs = {}
    for key, name in [("emnist", "gzip.zip"), ("omniglot_background", "images_background.zip"),
                      ("omniglot_evaluation", "images_evaluation.zip"), ("cifar10", "cifar-10-python.tar.gz")]:
        data = (src / name).read_bytes()
        specs[key] = ArchiveSpec(name, f"http://127.0.0.1:9/{name}", hashlib.md5(data).hexdigest())
    monkeypatch.setattr(registry, "ARCHIVES", specs)
    return src


def real_config(tmp_path, mirror, **sizes):
    return DataConfig(source="real", seed=0, sizes={**SIZES, **sizes}, raw_dir=str(tmp_path / "raw"),
                      mirror=mirror, retries=0, timeout=5)


def test_real_source_prepares_every_concept_from_served_archives(tmp_path, fixture_archives):
    with serve() as srv:
        for p in fixture_archives.iterdir():
            srv.files[p.name] = p.read_bytes()
        cfg = real_config(tmp_path, srv.base)
        out = {c: prepare_concept(c, cfg) for c in ("digits", "letters", "omniglot", "cifar10", "noise")}
        n_requests = len(srv.requests)
    assert n_requests == 4  # the EMNIST zip is downloaded once for digits and letters
    d = out["digits"]
    assert d.source == "real" and list(d.split) == ["train"] * 4 + ["test"] * 3
    assert d.images.shape == (7, 28, 28)
    assert d.provenance["archives"][0]["md5"] == hashlib.md5((fixture_archives / "gzip.zip").read_bytes()).hexdigest()
    assert len(d.provenance["archives"][0]["sha256"]) == 64
    assert out["letters"].labels.min() >= 0
    om = out["omniglot"]
    assert len(om) == 5 and set(om.split) <= {"background", "evaluation"}
    assert set(om.labels) <= {0, 1, 2}  # three characters over both archives
    assert len(out["cifar10"]) == 4 and out["noise"].images.shape == (6, 28, 28)


def test_real_source_with_all_images_and_cache_reuse(tmp_path, fixture_archives):
    with serve() as srv:
        for p in fixture_archives.iterdir():
            srv.files[p.name] = p.read_bytes()
        cfg = real_config(tmp_path, srv.base, digits_train=None, digits_test=None)
        first = prepare_concept("digits", cfg)
        second = prepare_concept("digits", real_config(tmp_path, srv.base, digits_train=2, digits_test=None))
        assert len(srv.requests) == 1  # a change of size never downloads again
    assert len(first) == 16 and list(first.source_index[:10]) == list(range(10))
    assert len(second.select("train")) == 2


def test_real_source_without_network_fails_clearly_never_synthetic(tmp_path, fixture_archives):
    cfg = real_config(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(GradmetaError, match="failed after 1 attempts.*place gzip.zip"):
        prepare_concept("digits", cfg)


def test_synthetic_is_deterministic_and_seed_dependent():
    cfg = DataConfig(sizes=SIZES)
    for concept in ("digits", "letters", "omniglot", "cifar10", "noise"):
        a, b = prepare_concept(concept, cfg), prepare_concept(concept, cfg)
        assert a.source == "synthetic"
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
        c = prepare_concept(concept, DataConfig(sizes=SIZES, seed=1))
        assert not np.array_equal(a.images, c.images), concept


def test_synthetic_value_ranges_and_labels():
    sizes = {**SIZES, "digits_train": 300, "digits_test": 100, "letters": 200}
    cfg = DataConfig(sizes=sizes)
    d = prepare_concept("digits", cfg)
    assert d.images.dtype == np.uint8 and d.images.shape == (400, 28, 28)
    assert set(np.unique(d.labels)) == set(range(10))
    # white strokes on black: borders dark, every image has bright stroke pixels
    assert d.images[:, 0, :].mean() < 10 and (d.images.max(axis=(1, 2)) >= 180).all()
    assert d.provenance["generator"].startswith("gradmeta.synthetic/")
    letters = prepare_concept("letters", cfg)
    assert letters.labels.min() >= 0 and letters.labels.max() <= 25 and len(np.unique(letters.labels)) > 20
    noise = prepare_concept("noise", cfg).images
    assert 100 < noise.mean() < 155 and noise.min() == 0 and noise.max() == 255


def test_sizes_of_one_split_do_not_change_the_other():
    base = prepare_concept("digits", DataConfig(sizes=SIZES)).select("test")
    more = prepare_concept("digits", DataConfig(sizes={**SIZES, "digits_train": 9})).select("test")
    np.testing.assert_array_equal(base.images, more.images)


def test_synthetic_needs_explicit_sizes():
    with pytest.raises(GradmetaError, match="data.sizes.letters must be a positive integer"):
        prepare_concept("letters", DataConfig(sizes={**SIZES, "letters": None}))


def test_unknown_concept():
    with pytest.raises(GradmetaError, match="unknown concept 'shapes'"):
        prepare_concept("shapes", DataConfig(sizes=SIZES))


def test_extra_fonts_are_rendered_and_missing_ones_named(tmp_path):
    import shutil

    import matplotlib

    from gradmeta.datasets import synthetic

    font = tmp_path / "Extra.ttf"
    shutil.copy(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans-Bold.ttf", font)
    base = synthetic.glyph_templates(synthetic.DIGITS)
    extended = synthetic.glyph_templates(synthetic.DIGITS, [str(font)])
    assert extended.shape[0] == base.shape[0] + 1
    assert float(extended[-1].sum()) > 0
    with pytest.raises(GradmetaError, match="data.synthetic.extra_fonts: font file .*nope.ttf not found"):
        prepare_concept("digits", DataConfig(sizes=SIZES, extra_fonts=(str(tmp_path / "nope.ttf"),)))
