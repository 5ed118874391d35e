"""Offline stand-ins for OpenOOD's near- and far-OOD sets, 32x32 RGB unless said (TinyImageNet's: 64x64).
Each looks like its kind, none is a photograph of the real set, and every output that holds them says
they are stand-ins:

- CIFAR-100: the CIFAR-10 stand-in's shapes in the hues of *other* classes (shape s in hue h, s != h):
  90 object-like classes, near the known concept's;
- TinyImageNet: the same ten shapes in the ten hues halfway between CIFAR-10's, 64x64: 100 classes;
- SVHN: digits rendered from fonts, in a colour on a colour background, with noise;
- Textures: procedural textures in two colours (stripes, checks, dots, waves, blobs, cross-hatching);
- Places365: colour crops of scikit-learn's two sample photographs at random scales.
"""

from __future__ import annotations

import numpy as np

from gradmeta.datasets import synthetic
from gradmeta.datasets.colour_objects import CLASSES, colour_objects, hsv_to_rgb
from gradmeta.datasets.imageops import area_resize

GENERATOR = "gradmeta.colour_standins/1"
NEAR_CLASSES = tuple((s, float(h)) for s in range(len(CLASSES)) for h in range(len(CLASSES)) if s != h)
HALF_HUE_CLASSES = tuple((s, h + 0.5) for s in range(len(CLASSES)) for h in range(len(CLASSES)))
TEXTURES = ("stripes", "checks", "dots", "waves", "blobs", "cross-hatching")


def cifar100_like(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(count, 32, 32, 3) objects of the 90 classes of :data:`NEAR_CLASSES`, and their class."""
    return colour_objects(count, rng, 32, NEAR_CLASSES)


def tinyimagenet_like(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(count, 64, 64, 3) objects of the 100 classes of :data:`HALF_HUE_CLASSES`, and their class."""
    return colour_objects(count, rng, 64, HALF_HUE_CLASSES)


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    first = hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0))
    second = hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.8), rng.uniform(0.0, 1.0))
    return first, second


def house_numbers(glyphs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey glyphs (n, 28, 28), white on black, as (n, 32, 32, 3) colour digits on colour backgrounds."""
    out = np.empty((len(glyphs), 32, 32, 3), dtype=np.uint8)
    for i, glyph in enumerate(glyphs):
        alpha = np.zeros((32, 32))
        alpha[2:30, 2:30] = glyph / 255.0
        ink, paper = _two_colours(rng)
        shade = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), 32)[:, None, None]
        picture = (ink * alpha[..., None] + paper * (1 - alpha[..., None])) * shade
        picture = picture + rng.normal(0, 0.04, picture.shape)
        out[i] = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
    return out


def _pattern(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """A texture's mixing field in [0, 1], (size, size)."""
    grid = np.arange(size) / size
    y, x = np.meshgrid(grid, grid, indexing="ij")
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    f = rng.uniform(2, 8)
    if kind == 0:
        field = np.sin(2 * np.pi * f * u)
    elif kind == 1:
        field = np.sign(np.sin(2 * np.pi * f * u) * np.sin(2 * np.pi * f * v))
    elif kind == 2:
        field = np.cos(2 * np.pi * f * u) * np.cos(2 * np.pi * f * v) > rng.uniform(0.2, 0.7)
    elif kind == 3:
        field = np.sin(2 * np.pi * f * u + rng.uniform(1, 4) * np.sin(2 * np.pi * rng.uniform(1, 3) * v))
    elif kind == 4:
        coarse = rng.random((int(rng.integers(3, 9)),) * 2)
        field = area_resize(np.clip(coarse * 255, 0, 255).astype(np.uint8), size) / 255.0
    else:
        field = np.maximum(np.sin(2 * np.pi * f * u), np.sin(2 * np.pi * f * v))
    field = np.asarray(field, dtype=np.float64)
    return (field - field.min()) / max(np.ptp(field), 1e-9)


def textures(count: int, rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(count, size, size, 3) procedural textures of the six kinds of :data:`TEXTURES`, and their kind."""
    labels = rng.permutation(np.arange(count) % len(TEXTURES)).astype(np.int64)
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i, kind in enumerate(labels):
        field = _pattern(int(kind), rng, size)[..., None]
        first, second = _two_colours(rng)
        picture = first * field + second * (1 - field) + rng.normal(0, 0.05, (size, size, 3))
        out[i] = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
    return out, labels


def _colour_photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images  # noqa: PLC0415 - only where the stand-in is made

    return tuple(np.asarray(img, dtype=np.uint8) for img in load_sample_images().images)


def photo_crops(count: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """(count, size, size, 3) colour crops of scikit-learn's sample photographs, at random scales, some
    mirrored (:func:`gradmeta.datasets.synthetic.random_crops`)."""
    return synthetic.random_crops(_colour_photos(), count, rng, size)


def digits_in_colour(count: int, rng: np.random.Generator, distortion: float,
                     extra_fonts: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(count, 32, 32, 3) SVHN-like colour digits and the digit shown (0-9)."""
    glyphs, labels = synthetic.render_glyphs(synthetic.DIGITS, count, rng, distortion=distortion,
                                             extra_fonts=extra_fonts)
    return house_numbers(glyphs, rng), labels
