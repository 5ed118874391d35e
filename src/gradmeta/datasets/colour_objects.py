"""CIFAR-like colour objects: ten classes that a small network learns, the offline stand-in for CIFAR-10.

Class c is one shape in one hue: a disc, square, triangle, ring, cross, diamond, horizontal bars, vertical
bars, checkerboard or ellipse, its hue c/10 of the colour wheel (jittered), at a random position, size,
rotation, saturation and brightness, on a smooth two-colour background of low saturation, with pixel noise.
The class is in the shape and the colour together, and every image differs: a network has something to
learn, and something to get wrong (a small, dark or washed-out object). These are not photographs; every
output that holds them says it is a stand-in.
"""

from __future__ import annotations

import numpy as np

GENERATOR = "gradmeta.colour_objects/1"
CLASSES = ("disc", "square", "triangle", "ring", "cross", "diamond", "horizontal bars", "vertical bars",
           "checkerboard", "ellipse")


def _shape_mask(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where shape ``label`` covers the object's own coordinates (u, v): the unit square [-1, 1]^2 is its extent."""
    radius = np.hypot(u, v)
    inside = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    masks = (
        lambda: radius <= 1,
        lambda: np.maximum(np.abs(u), np.abs(v)) <= 0.8,
        lambda: (v <= 0.7) & (np.abs(u) <= 0.55 * (v + 0.9)),
        lambda: (radius >= 0.55) & (radius <= 1),
        lambda: inside & ((np.abs(u) <= 0.28) | (np.abs(v) <= 0.28)),
        lambda: np.abs(u) + np.abs(v) <= 1,
        lambda: inside & (np.floor((v + 1) * 2.5) % 2 == 0),
        lambda: inside & (np.floor((u + 1) * 2.5) % 2 == 0),
        lambda: inside & ((np.floor((u + 1) * 2) + np.floor((v + 1) * 2)) % 2 == 0),
        lambda: (u / 1.0) ** 2 + (v / 0.45) ** 2 <= 1,
    )
    return masks[label]()


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (each in [0, 1]) as RGB floats in [0, 1] (the standard hexcone model)."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


OWN_CLASSES = tuple((c, float(c)) for c in range(len(CLASSES)))  # CIFAR-10's stand-in: shape c in hue c


def colour_objects(count: int, rng: np.random.Generator, size: int = 32,
                   classes: tuple[tuple[int, float], ...] = OWN_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images uint8 (count, size, size, 3) and their classes int64 (count,), the classes balanced
    (each appears count // len(classes) or one more times) and shuffled. Class k is ``classes[k]``: a shape
    (0-9, :data:`CLASSES`) and a hue position (0-10; the hue is position / 10 of the colour wheel)."""
    labels = rng.permutation(np.arange(count) % len(classes)).astype(np.int64)
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        cx, cy = rng.uniform(-0.3, 0.3, 2)
        scale = rng.uniform(0.35, 0.65)
        angle = rng.uniform(-0.5, 0.5)
        u = ((x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)) / scale
        v = (-(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)) / scale
        shape, hue_position = classes[int(label)]
        mask = _shape_mask(shape, u, v)[..., None]
        hue = (hue_position / len(CLASSES) + rng.normal(0, 0.02)) % 1.0
        colour = hsv_to_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
        corners = [hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.3), rng.uniform(0.15, 0.85)) for _ in range(2)]
        direction = rng.uniform(0, 2 * np.pi)
        t = ((x * np.cos(direction) + y * np.sin(direction)) + 1.5) / 3  # a gradient across the image
        background = corners[0] * (1 - t[..., None]) + corners[1] * t[..., None]
        picture = np.where(mask, colour, background) + rng.normal(0, 0.03, (size, size, 3))
        images[i] = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
    return images, labels
