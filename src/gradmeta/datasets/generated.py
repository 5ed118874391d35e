"""Builders of generated concepts: the synthetic stand-ins for public archives, and noise.

Each concept and split draws from its own named stream (``<concept>/<split>``) of ``data.seed``, so
changing one concept's size leaves every other file byte-identical.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradmeta.datasets import colour_standins, synthetic
from gradmeta.datasets.assemble import Built, Part, stream_rng, unlabelled
from gradmeta.datasets.colour_objects import CLASSES, GENERATOR, colour_objects
from gradmeta.datasets.noise import gaussian_noise, uniform_noise

if TYPE_CHECKING:
    from gradmeta.datasets.config import ConceptSpec, DataConfig


def _generator(cfg: DataConfig, **extra) -> dict:
    return {"generator": f"gradmeta.synthetic/{synthetic.GENERATOR_VERSION}", "seed": cfg.seed, **extra}



def _glyphs(chars: str, case_mix: bool):
    def build(spec: ConceptSpec, cfg: DataConfig) -> Built:
        parts = []
        for split, count in spec.split_counts():
            images, labels = synthetic.render_glyphs(chars, count, stream_rng(cfg.seed, f"{spec.name}/{split}"),
                                                     distortion=cfg.distortion, extra_fonts=cfg.extra_fonts,
                                                     case_mix=case_mix)
            parts.append(Part(split, images, labels, np.arange(count)))
        return Built(parts, _generator(cfg, distortion=cfg.distortion))
    return build


synthetic_digits = _glyphs(synthetic.DIGITS, case_mix=False)
synthetic_letters = _glyphs(synthetic.LETTERS, case_mix=True)


def synthetic_strokes(spec: ConceptSpec, cfg: DataConfig) -> Built:
    images = synthetic.pen_strokes(spec.test, stream_rng(cfg.seed, f"{spec.name}/test"))
    return Built([unlabelled("test", images)], _generator(cfg))


def synthetic_photos(spec: ConceptSpec, cfg: DataConfig) -> Built:
    images = synthetic.photo_patches(spec.test, stream_rng(cfg.seed, f"{spec.name}/test"))
    return Built([unlabelled("test", images)], _generator(cfg, photos="sklearn.datasets.load_sample_images"))


def uniform(spec: ConceptSpec, cfg: DataConfig) -> Built:
    images = uniform_noise(spec.test, stream_rng(cfg.seed, f"{spec.name}/test"))
    return Built([unlabelled("test", images)], {"generator": "uniform U[0,1] per pixel", "seed": cfg.seed})


def gaussian(spec: ConceptSpec, cfg: DataConfig) -> Built:
    images = gaussian_noise(spec.test, stream_rng(cfg.seed, f"{spec.name}/test"))
    return Built([unlabelled("test", images)],
                 {"generator": "N(0.5, 1) per pixel, clipped to [0, 1]", "seed": cfg.seed})


def _standin(make, generator: str = colour_standins.GENERATOR, **record):
    """A builder of one colour stand-in: ``make(count, rng, cfg)`` gives (images, labels or None) for each
    split the concept has, from the concept's own stream ``<concept>/<split>``; ``generator`` and ``record``
    are its provenance."""
    def build(spec: ConceptSpec, cfg: DataConfig) -> Built:
        parts = []
        for split, count in spec.split_counts():
            images, labels = make(count, stream_rng(cfg.seed, f"{spec.name}/{split}"), cfg)
            parts.append(Part(split, images, labels, np.arange(count)) if labels is not None
                         else unlabelled(split, images))
        return Built(parts, {"generator": generator, "seed": cfg.seed, **record})
    return build


# Ten classes of colour objects, 32x32 RGB (:mod:`gradmeta.datasets.colour_objects`), train and test.
synthetic_cifar10 = _standin(lambda n, rng, cfg: colour_objects(n, rng), GENERATOR, classes=list(CLASSES))


synthetic_cifar100 = _standin(lambda n, rng, cfg: colour_standins.cifar100_like(n, rng),
                              classes="shape s in hue h, s != h (90)")
synthetic_tinyimagenet = _standin(lambda n, rng, cfg: colour_standins.tinyimagenet_like(n, rng),
                                  classes="each shape in each half-step hue (100)")
synthetic_svhn = _standin(lambda n, rng, cfg: colour_standins.digits_in_colour(n, rng, cfg.distortion,
                                                                                cfg.extra_fonts),
                          distortion="data.synthetic.distortion")
synthetic_textures = _standin(lambda n, rng, cfg: colour_standins.textures(n, rng),
                              kinds=list(colour_standins.TEXTURES))
synthetic_places365 = _standin(lambda n, rng, cfg: (colour_standins.photo_crops(n, rng), None),
                               photos="sklearn.datasets.load_sample_images, in colour")
