"""The registry end to end: real archives served from 127.0.0.1, the synthetic generators, noise."""

import hashlib

import numpy as np
import pytest
from archives import make_cifar_tarball, make_emnist_zip, make_idx_dataset, make_omniglot_zip
from data_params import data_config, paper_concepts
from http_server import serve

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import prepare_concept, public
from gradmeta.datasets.download import ARCHIVES, ArchiveSpec

PAPER = ("digits", "letters", "omniglot", "cifar10", "noise")


def fixture_specs(src, monkeypatch) -> None:
    """Point every archive of ARCHIVES at a fixture file of ``src`` with that file's own MD5."""
    specs = dict(ARCHIVES)
    for key, spec in ARCHIVES.items():
        path = src / spec.relpath
        if path.exists():
            specs[key] = ArchiveSpec(spec.filename, f"http://127.0.0.1:9/{spec.relpath}",
                                     hashlib.md5(path.read_bytes()).hexdigest(), spec.folder)
    monkeypatch.setattr(public, "ARCHIVES", specs)


@pytest.fixture
def fixture_archives(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    make_emnist_zip(src / "gzip.zip", {("digits", "train"): 10, ("digits", "test"): 6, ("letters", "test"): 8})
    make_omniglot_zip(src / "images_background.zip", "images_background", {"A": 2}, drawings=2)
    make_omniglot_zip(src / "images_evaluation.zip", "images_evaluation", {"B": 1}, drawings=2)
    make_cifar_tarball(src / "cifar-10-python.tar.gz", n=7)
    make_idx_dataset(src / "fashion_mnist", {"train": 12, "test": 9}, seed=1)
    make_idx_dataset(src / "mnist", {"train": 11, "test": 8}, seed=2)
    fixture_specs(src, monkeypatch)
    return src


def serve_folder(srv, src) -> None:
    for p in src.rglob("*"):
        if p.is_file():
            srv.files[p.relative_to(src).as_posix()] = p.read_bytes()


def real_config(tmp_path, mirror, concepts=None, **data):
    return data_config(concepts, source="real", real={"raw_dir": str(tmp_path / "raw"), "mirror": mirror,
                                                      "retries": 0, "timeout": 5}, **data)


def test_real_source_prepares_every_concept_from_served_archives(tmp_path, fixture_archives):
    with serve() as srv:
        serve_folder(srv, fixture_archives)
        cfg = real_config(tmp_path, srv.base)
        out = {c: prepare_concept(c, cfg) for c in PAPER}
        n_requests = len(srv.requests)
    assert n_requests == 4  # the EMNIST zip is downloaded once for digits and letters
    d = out["digits"]
    assert (d.source, d.kind) == ("emnist_digits", "archive") and list(d.split) == ["train"] * 4 + ["test"] * 3
    assert d.images.shape == (7, 28, 28)
    assert d.provenance["archives"][0]["md5"] == hashlib.md5((fixture_archives / "gzip.zip").read_bytes()).hexdigest()
    assert len(d.provenance["archives"][0]["sha256"]) == 64 and d.provenance["description"] == "EMNIST digits"
    assert out["letters"].labels.min() >= 0
    om = out["omniglot"]
    assert len(om) == 5 and set(om.split) <= {"background", "evaluation"}
    assert set(om.labels) <= {0, 1, 2}  # three characters over both archives
    assert len(out["cifar10"]) == 4 and out["noise"].images.shape == (6, 28, 28)
    assert (out["noise"].source, out["noise"].kind) == ("uniform_noise", "generated")


def test_fashion_and_mnist_read_their_own_files_though_the_names_are_the_same(tmp_path, fixture_archives):
    concepts = {"fashion": {"source": "fashion_mnist", "train": 5, "test": None},
                "mnist": {"source": "mnist", "test": 3}}
    with serve() as srv:
        serve_folder(srv, fixture_archives)
        cfg = real_config(tmp_path, srv.base, concepts, known="fashion")
        fashion, mnist = prepare_concept("fashion", cfg), prepare_concept("mnist", cfg)
    truth = make_idx_dataset(tmp_path / "again", {"train": 12, "test": 9}, seed=1)
    assert list(fashion.split) == ["train"] * 5 + ["test"] * 9
    train = fashion.select("train")
    np.testing.assert_array_equal(train.images, truth["train"][0][train.source_index])
    np.testing.assert_array_equal(train.labels, truth["train"][1][train.source_index])
    np.testing.assert_array_equal(fashion.select("test").images, truth["test"][0])  # test: null = all 9
    mnist_truth = make_idx_dataset(tmp_path / "again2", {"train": 11, "test": 8}, seed=2)
    assert len(mnist) == 3 and (mnist.split == "test").all()
    np.testing.assert_array_equal(mnist.images, mnist_truth["test"][0][mnist.source_index])
    assert (tmp_path / "raw" / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert (tmp_path / "raw" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert [a["file"] for a in fashion.provenance["archives"]] == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"]


def test_published_idx_checksums_are_the_ones_upstream_publishes():
    assert ARCHIVES["fashion_mnist_test_images"].md5 == "bef4ecab320f06d8554ea6380940ec79"
    assert ARCHIVES["fashion_mnist_train_labels"].md5 == "25c81989df183df01b3e8a0aad5dffbe"
    assert ARCHIVES["mnist_test_labels"].md5 == "ec29112dd5afa0611ce80d1b7f02629c"
    assert ARCHIVES["mnist_train_images"].url == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert ARCHIVES["fashion_mnist_test_labels"].relpath == "fashion_mnist/t10k-labels-idx1-ubyte.gz"


def test_real_source_with_all_images_and_cache_reuse(tmp_path, fixture_archives):
    with serve() as srv:
        serve_folder(srv, fixture_archives)
        cfg = real_config(tmp_path, srv.base, paper_concepts(digits=(None, None)))
        first = prepare_concept("digits", cfg)
        second = prepare_concept("digits", real_config(tmp_path, srv.base, paper_concepts(digits=(2, None))))
        assert len(srv.requests) == 1  # a change of size never downloads again
    assert len(first) == 16 and list(first.source_index[:10]) == list(range(10))
    assert len(second.select("train")) == 2


def test_real_source_without_network_fails_clearly_never_synthetic(tmp_path, fixture_archives):
    cfg = real_config(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(GradmetaError, match="failed after 1 attempts.*place gzip.zip"):
        prepare_concept("digits", cfg)


def test_the_archive_cache_defaults_to_the_per_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_config().archive_dir == tmp_path / "xdg" / "gradmeta"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_config().archive_dir == tmp_path / "home" / ".cache" / "gradmeta"
    assert data_config(real={"raw_dir": "here"}).archive_dir.as_posix() == "here"


def test_synthetic_is_deterministic_and_seed_dependent():
    cfg = data_config()
    for concept in PAPER:
        a, b = prepare_concept(concept, cfg), prepare_concept(concept, cfg)
        assert a.kind == ("generated" if concept == "noise" else "synthetic")
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
        c = prepare_concept(concept, data_config(seed=1))
        assert not np.array_equal(a.images, c.images), concept


def test_a_stand_in_says_what_it_stands_in_for():
    d = prepare_concept("digits", data_config())
    assert d.source == "synthetic_digits"
    assert d.provenance["description"] == "digits rendered from fonts, standing in for EMNIST digits (data.source: synthetic)"


def test_synthetic_value_ranges_and_labels():
    cfg = data_config(paper_concepts(digits=(300, 100), letters=200))
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


def test_gaussian_noise_is_clipped_normal_around_a_half():
    cfg = data_config({"digits": {"source": "synthetic_digits", "train": 2, "test": 2},
                       "gauss": {"source": "gaussian_noise", "test": 400}})
    g = prepare_concept("gauss", cfg)
    assert (g.source, g.kind) == ("gaussian_noise", "generated") and (g.labels == -1).all()
    x = g.images.astype(float) / 255
    # N(0.5, 1) clipped to [0, 1]: P(x <= 0) = P(x >= 1) = Phi(-0.5) = 0.3085
    from scipy.stats import norm
    assert (x == 0).mean() == pytest.approx(norm.cdf(-0.5), abs=0.01)
    assert (x == 1).mean() == pytest.approx(norm.cdf(-0.5), abs=0.01)
    assert x.mean() == pytest.approx(0.5, abs=0.01)


def test_sizes_of_one_split_do_not_change_the_other():
    base = prepare_concept("digits", data_config()).select("test")
    more = prepare_concept("digits", data_config(paper_concepts(digits=(9, 3)))).select("test")
    np.testing.assert_array_equal(base.images, more.images)


def test_two_concepts_of_one_source_get_their_own_images():
    cfg = data_config({"digits": {"source": "synthetic_digits", "train": 2, "test": 2},
                       "noise_a": {"source": "uniform_noise", "test": 3}, "noise_b": {"source": "uniform_noise", "test": 3}})
    assert not np.array_equal(prepare_concept("noise_a", cfg).images, prepare_concept("noise_b", cfg).images)


NOISE_WITH_TRAIN = {"noise": {"source": "uniform_noise", "train": 5, "test": 5}}


@pytest.mark.parametrize("concepts, data, message", [
    ({"letters": {"source": "emnist_letters", "test": None}}, {}, "data.concepts.letters.test: must be a number"),
    ({"omniglot": {"source": "omniglot", "train": 5, "test": 5}}, {},
     "data.concepts.omniglot.train: Omniglot has no train split"),
    ({"shapes": {"source": "shapes", "test": 5}}, {}, "data.concepts.shapes.source must be one of emnist_digits"),
    ({"fashion": {"source": "fashion_mnist", "test": 5}}, {},
     "data.concepts.fashion.source: fashion_mnist has no synthetic stand-in"),
    ({"Bad-Name": {"source": "uniform_noise", "test": 5}}, {}, "concept name 'Bad-Name' must be a lower-case letter"),
    ({}, {"known": "noise"}, "data.known: the known concept 'noise' needs train images"),
    (NOISE_WITH_TRAIN, {"known": "noise"}, "data.concepts.noise.train: uniform noise has no train split"),
    ({"strokes": {"source": "synthetic_strokes", "test": 5}}, {"known": "strokes"},
     "data.known: the known concept 'strokes' needs train"),
    ({}, {"known": "fashion"}, "data.known must be one of the concepts (digits, letters"),
    ({"digits": {"source": "emnist_digits", "train": 5, "tset": 5}}, {},
     "data.concepts.digits.tset is not a parameter; did you mean"),
])
def test_bad_concepts_are_named(concepts, data, message):
    with pytest.raises(GradmetaError) as err:
        data_config({**paper_concepts(), **concepts}, **data)
    assert message in str(err.value), str(err.value)


def test_an_undefined_concept_is_named():
    with pytest.raises(GradmetaError, match="no concept 'shapes' in data.concepts or data.user_concepts"):
        prepare_concept("shapes", data_config())


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
        prepare_concept("digits", data_config(synthetic={"extra_fonts": [str(tmp_path / "nope.ttf")]}))
