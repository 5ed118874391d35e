"""The image geometry of a pipeline: every prepared concept holds uint8 images of one (height, width,
channels), set by the known concept (its source's native geometry, or ``data.image``).

A grey geometry (1 channel) stores images as (N, H, W), as the paper's digits always were; a colour one
(3 channels, RGB) as (N, H, W, 3). Models take them as float (N, C, H, W) in [0, 1]
(:func:`gradmeta.cnn.model.to_tensor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SIDE = 512  # pixels on a side of a pipeline image (ImageNet's usual crops are 224; every stage holds them)
CHANNELS = (1, 3)


@dataclass(frozen=True)
class Geometry:
    """Height, width and channels (1 grey or 3 RGB) of a pipeline's images."""

    height: int = 28
    width: int = 28
    channels: int = 1

    def __post_init__(self) -> None:
        if not (0 < self.height <= MAX_SIDE and 0 < self.width <= MAX_SIDE and self.channels in CHANNELS):
            raise ValueError(f"a geometry is H, W in 1..{MAX_SIDE} and 1 or 3 channels, got {self}")

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one stored image: (H, W) grey or (H, W, 3) colour."""
        return (self.height, self.width) if self.channels == 1 else (self.height, self.width, self.channels)

    def describe(self) -> str:
        """``28x28 grey`` or ``32x32 RGB``."""
        return f"{self.width}x{self.height} {'grey' if self.channels == 1 else 'RGB'}"


DEFAULT = Geometry()  # the paper's: 28x28 grey, white on black


def geometry_of(images: np.ndarray) -> Geometry:
    """The geometry of stored images (N, H, W) or (N, H, W, 3); a ValueError for any other shape."""
    if images.ndim == 3:
        return Geometry(images.shape[1], images.shape[2], 1)
    if images.ndim == 4 and images.shape[3] == 3:
        return Geometry(images.shape[1], images.shape[2], 3)
    raise ValueError(f"images of shape {images.shape}; expected (N, H, W) grey or (N, H, W, 3) colour")
