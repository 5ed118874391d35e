"""Small image operations shared by the readers and generators (uint8 arrays, white on black)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from gradmeta.core.atomic import atomic_path
from gradmeta.geometry import Geometry, geometry_of


def area_resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image (H, W) or (H, W, 3) to ``size`` x ``size`` (or (height, width)) by area
    averaging (PIL's box filter: each output pixel is the mean of the source area it covers; enlarging,
    each source pixel is repeated over the area it covers)."""
    height, width = (size, size) if isinstance(size, int) else size
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BOX), dtype=np.uint8)


def to_geometry(images: np.ndarray, geometry: Geometry) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, 3) in ``geometry``, the way the field converts them: colour to grey
    by ITU-R 601 luminance (:func:`rgb_to_grey`), grey to colour by repeating the grey value in R, G and B,
    then an area resize (:func:`area_resize`) to its height and width. Images already in it are returned as
    they are (the same array)."""
    if geometry_of(images) == geometry:
        return images
    out = np.empty((len(images), *geometry.image_shape), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.ndim == 3 and geometry.channels == 1:
            image = rgb_to_grey(image[None])[0]
        elif image.ndim == 2 and geometry.channels == 3:
            image = np.repeat(image[..., None], 3, axis=2)
        out[i] = image if image.shape[:2] == (geometry.height, geometry.width) else area_resize(
            np.ascontiguousarray(image), (geometry.height, geometry.width))
    return out


GREY_BLOCK_BYTES = 1 << 24  # float64 working memory per block of rgb_to_grey


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance (0.299 R + 0.587 G + 0.114 B, summed in that order in float64) of uint8
    (..., 3) images, rounded to uint8. Works through the leading axis in blocks, so the float64
    working memory stays near ``GREY_BLOCK_BYTES`` whatever the size of ``rgb``."""
    grey = np.empty(rgb.shape[:-1], dtype=np.uint8)
    if rgb.ndim == 1 or grey.size == 0:
        return grey
    per_entry = max(1, rgb[0].size * 8)
    step = max(1, GREY_BLOCK_BYTES // per_entry)
    for start in range(0, len(rgb), step):
        block = rgb[start: start + step].astype(np.float64)
        luminance = block[..., 0] * 0.299 + block[..., 1] * 0.587 + block[..., 2] * 0.114
        grey[start: start + step] = np.clip(np.rint(luminance), 0, 255)
    return grey


def subsample_indices(available: int, count: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``count`` items drawn without replacement (all of them when None)."""
    if count is None or count >= available:
        return np.arange(available)
    return np.sort(rng.choice(available, size=count, replace=False))


def montage(images: np.ndarray, columns: int = 16, scale: int = 2) -> np.ndarray:
    """Tile up to ``columns``**2 images (N, H, W) or (N, H, W, 3) into one uint8 picture (grey, or RGB for
    colour images) with 1-pixel grey gaps, each pixel ``scale`` x ``scale``."""
    images = images[: columns * columns]
    n, h, w = images.shape[:3]
    rows = max(1, -(-n // columns))
    canvas = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, *images.shape[3:]), 96, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = img
    return np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)


def save_montage(path: str | os.PathLike[str], images: np.ndarray, count: int = 128) -> None:
    """A PNG montage of ``count`` images spread evenly over ``images`` (N, H, W) or (N, H, W, 3), written
    atomically."""
    sample = images[np.linspace(0, len(images) - 1, min(len(images), count)).astype(int)]
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(montage(sample, columns=16)).save(tmp, format="PNG")
