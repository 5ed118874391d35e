"""A new concept source is one file and its test: a source registered inside this test module, with its
archive's file name, URL and published checksum declared with it, is a valid ``data.concepts.<c>.source``,
is refused offline (no stand-in declared), and is downloaded from a local server, verified and prepared
by the download stage's code. Reference: the archive's own arrays, and its MD5 computed here."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from data_params import data_config
from http_server import serve

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import public
from gradmeta.datasets.assemble import Built
from gradmeta.datasets.download import ARCHIVES, ArchiveSpec
from gradmeta.datasets.preparation import prepare_concept
from gradmeta.datasets.sources import SOURCES, known_sources, register_source

RNG = np.random.default_rng(7)
IMAGES = RNG.integers(0, 256, (12, 28, 28), dtype=np.uint8)
LABELS = RNG.integers(0, 3, 12)


def archive_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, images=IMAGES, labels=LABELS)
    return buf.getvalue()


@pytest.fixture
def toy():
    payload = archive_bytes()
    archive = ArchiveSpec("toy_glyphs.npz", "https://example.invalid/data/toy_glyphs.npz", hashlib.md5(payload).hexdigest(),
                          folder="toy")

    @register_source("toy_glyphs", title="toy glyphs (a test archive)", kind="archive", labelled=True, has_train=False,
                     archives={"toy_glyphs": archive})
    def build(spec, cfg):
        records: list[dict] = []
        with np.load(public.fetch(cfg, "toy_glyphs", records)) as npz:
            images, labels = npz["images"], npz["labels"]
        parts = [public.subsample(spec, cfg, split, images, labels, count) for split, count in spec.split_counts()]
        return Built(parts, {"archives": records, "seed": cfg.seed})

    yield payload
    SOURCES.pop("toy_glyphs")
    ARCHIVES.pop("toy_glyphs")


def test_the_toy_source_is_a_param_value_and_is_refused_offline(toy):
    assert "toy_glyphs" in known_sources()
    concepts = {"digits": {"source": "synthetic_digits", "train": 10, "test": 5}, "toy": {"source": "toy_glyphs", "test": 4}}
    data_config(concepts, source="real")  # valid with the archives
    with pytest.raises(GradmetaError, match="data.concepts.toy.source: toy_glyphs has no synthetic stand-in"):
        data_config(concepts)  # data.source: synthetic, the default


def test_the_toy_source_is_downloaded_verified_and_prepared(toy, tmp_path):
    concepts = {"digits": {"source": "synthetic_digits", "train": 10, "test": 5}, "toy": {"source": "toy_glyphs", "test": 4}}
    with serve() as server:
        server.files["toy/toy_glyphs.npz"] = toy
        cfg = data_config(concepts, source="real", real={"raw_dir": str(tmp_path), "mirror": server.base + "/"})
        prepared = prepare_concept("toy", cfg)
    assert len(prepared.images) == 4 and prepared.source == "toy_glyphs" and prepared.kind == "archive"
    rows = prepared.source_index
    np.testing.assert_array_equal(prepared.images, IMAGES[rows])
    np.testing.assert_array_equal(prepared.labels, LABELS[rows])
    (record,) = prepared.provenance["archives"]
    assert record["md5"] == hashlib.md5(toy).hexdigest() and record["origin"] == "downloaded"


def test_a_taken_name_or_archive_is_refused(toy):
    with pytest.raises(GradmetaError, match="concept source 'cifar10' is already registered"):
        register_source("cifar10", title="x", kind="generated", labelled=False, has_train=False)(lambda spec, cfg: None)
    other = ArchiveSpec("x.npz", "https://example.invalid/x.npz", "0" * 32)
    with pytest.raises(GradmetaError, match="archive 'toy_glyphs' is already another file"):
        register_source("toy_two", title="x", kind="archive", labelled=False, has_train=False,
                        archives={"toy_glyphs": other})(lambda spec, cfg: None)
    assert "toy_two" not in SOURCES
