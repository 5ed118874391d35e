"""From concept name and source to prepared data: the one place that knows how each concept is made."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from gradmeta.core.concepts import CONCEPTS
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import synthetic
from gradmeta.datasets.cifar10 import read_cifar10_test
from gradmeta.datasets.config import DataConfig
from gradmeta.datasets.download import ARCHIVES, archive_url, ensure_archive
from gradmeta.datasets.emnist import read_emnist
from gradmeta.datasets.imageops import subsample_indices
from gradmeta.datasets.noise import uniform_noise
from gradmeta.datasets.omniglot import list_omniglot, read_omniglot
from gradmeta.prepared import PreparedData


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An RNG for one named stream (e.g. ``digits/test``), independent of every other stream."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(stream.encode())])))


def _combine(concept: str, source: str, parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
             provenance: dict) -> PreparedData:
    """Concatenate (split, images, labels, source_index) parts into one PreparedData."""
    return PreparedData(
        concept, source,
        images=np.concatenate([p[1] for p in parts]),
        labels=np.concatenate([p[2] for p in parts]),
        split=np.concatenate([np.full(len(p[1]), p[0]) for p in parts]),
        source_index=np.concatenate([p[3] for p in parts]),
        provenance=provenance,
    )


# ----------------------------------------------------------------------------------- synthetic
def _synthetic_provenance(cfg: DataConfig, **extra) -> dict:
    return {"generator": f"gradmeta.synthetic/{synthetic.GENERATOR_VERSION}", "seed": cfg.seed, **extra}


def _synthetic_glyph_split(cfg: DataConfig, concept: str, split: str, chars: str, count: int,
                           case_mix: bool) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    images, labels = synthetic.render_glyphs(chars, count, stream_rng(cfg.seed, f"{concept}/{split}"),
                                             distortion=cfg.distortion, extra_fonts=cfg.extra_fonts,
                                             case_mix=case_mix)
    return split, images, labels, np.arange(count)


def _synthetic_count(cfg: DataConfig, key: str) -> int:
    count = cfg.sizes.get(key)
    if count is None:
        raise GradmetaError(f"{cfg.params_file}: data.sizes.{key} must be a positive integer for the synthetic "
                            "source (null means 'all', which only the real source has)")
    return count


def synthetic_digits(cfg: DataConfig) -> PreparedData:
    parts = [_synthetic_glyph_split(cfg, "digits", split, synthetic.DIGITS,
                                    _synthetic_count(cfg, f"digits_{split}"), False) for split in ("train", "test")]
    return _combine("digits", "synthetic", parts, _synthetic_provenance(cfg, distortion=cfg.distortion))


def synthetic_letters(cfg: DataConfig) -> PreparedData:
    part = _synthetic_glyph_split(cfg, "letters", "test", synthetic.LETTERS, _synthetic_count(cfg, "letters"), True)
    return _combine("letters", "synthetic", [part], _synthetic_provenance(cfg, distortion=cfg.distortion))


def synthetic_omniglot(cfg: DataConfig) -> PreparedData:
    n = _synthetic_count(cfg, "omniglot")
    images = synthetic.pen_strokes(n, stream_rng(cfg.seed, "omniglot/test"))
    return _combine("omniglot", "synthetic", [("test", images, np.full(n, -1), np.arange(n))],
                    _synthetic_provenance(cfg))


def synthetic_cifar10(cfg: DataConfig) -> PreparedData:
    n = _synthetic_count(cfg, "cifar10")
    images = synthetic.photo_patches(n, stream_rng(cfg.seed, "cifar10/test"))
    return _combine("cifar10", "synthetic", [("test", images, np.full(n, -1), np.arange(n))],
                    _synthetic_provenance(cfg, photos="sklearn.datasets.load_sample_images"))


def noise(cfg: DataConfig) -> PreparedData:
    n = _synthetic_count(cfg, "noise")
    images = uniform_noise(n, stream_rng(cfg.seed, "noise/test"))
    return _combine("noise", cfg.source, [("test", images, np.full(n, -1), np.arange(n))],
                    {"generator": "uniform U[0,1] per pixel", "seed": cfg.seed})


# ---------------------------------------------------------------------------------------- real
def _archive(cfg: DataConfig, key: str, provenance: list[dict]):
    spec = ARCHIVES[key]
    record = ensure_archive(spec, cfg.raw_dir, mirror=cfg.mirror, retries=cfg.retries, timeout=cfg.timeout)
    provenance.append(record.provenance(spec, archive_url(spec, cfg.mirror)))
    return record.path


def _emnist_split(cfg: DataConfig, path, subset: str, split: str, key: str):
    images, labels = read_emnist(path, subset, split, verify=False)  # ensure_archive verified it
    idx = subsample_indices(len(images), cfg.sizes.get(key), stream_rng(cfg.seed, f"{subset}/{split}"))
    return split, images[idx], labels[idx], idx


def real_digits(cfg: DataConfig) -> PreparedData:
    archives: list[dict] = []
    path = _archive(cfg, "emnist", archives)
    parts = [_emnist_split(cfg, path, "digits", split, f"digits_{split}") for split in ("train", "test")]
    return _combine("digits", "real", parts, {"archives": archives, "seed": cfg.seed})


def real_letters(cfg: DataConfig) -> PreparedData:
    archives: list[dict] = []
    path = _archive(cfg, "emnist", archives)
    part = _emnist_split(cfg, path, "letters", "test", "letters")
    return _combine("letters", "real", [part], {"archives": archives, "seed": cfg.seed})


def real_omniglot(cfg: DataConfig) -> PreparedData:
    archives: list[dict] = []
    members: list[tuple[str, str, str]] = []  # (split, archive path, member)
    keys: list[str] = []
    for split in ("background", "evaluation"):
        path = _archive(cfg, f"omniglot_{split}", archives)
        for name, key in list_omniglot(path):
            members.append((split, str(path), name))
            keys.append(f"{split}/{key}")
    classes = {k: i for i, k in enumerate(sorted(set(keys)))}
    idx = subsample_indices(len(members), cfg.sizes.get("omniglot"), stream_rng(cfg.seed, "omniglot/all"))
    parts = []
    for split in ("background", "evaluation"):
        chosen = [i for i in idx if members[i][0] == split]
        if not chosen:
            continue
        images, _ = read_omniglot(members[chosen[0]][1], [members[i][2] for i in chosen], verify=False)
        parts.append((split, images, np.array([classes[keys[i]] for i in chosen]), np.array(chosen)))
    return _combine("omniglot", "real", parts, {"archives": archives, "seed": cfg.seed})


def real_cifar10(cfg: DataConfig) -> PreparedData:
    archives: list[dict] = []
    images, labels = read_cifar10_test(_archive(cfg, "cifar10", archives), verify=False)
    idx = subsample_indices(len(images), cfg.sizes.get("cifar10"), stream_rng(cfg.seed, "cifar10/test"))
    return _combine("cifar10", "real", [("test", images[idx], labels[idx], idx)], {"archives": archives, "seed": cfg.seed})


BUILDERS: dict[str, dict[str, Callable[[DataConfig], PreparedData]]] = {
    "synthetic": {"digits": synthetic_digits, "letters": synthetic_letters, "omniglot": synthetic_omniglot,
                  "cifar10": synthetic_cifar10, "noise": noise},
    "real": {"digits": real_digits, "letters": real_letters, "omniglot": real_omniglot,
             "cifar10": real_cifar10, "noise": noise},
}


def prepare_concept(concept: str, cfg: DataConfig) -> PreparedData:
    """Prepared images of ``concept`` from ``cfg.source``; an unknown concept is a GradmetaError."""
    if concept not in CONCEPTS:
        raise GradmetaError(f"unknown concept {concept!r}, expected one of {', '.join(CONCEPTS)}")
    return BUILDERS[cfg.source][concept](cfg)
