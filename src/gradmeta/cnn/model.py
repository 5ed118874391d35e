"""The CNN of the study (the zoo's ``cnn``, :mod:`gradmeta.cnn.architectures`), built from a config dict;
its checkpoint format is :mod:`gradmeta.cnn.checkpoint`'s.

Default architecture (the paper does not publish its own): conv 5x5 32 + ReLU + max-pool 2,
conv 5x5 64 + ReLU + max-pool 2, dense 1024 + ReLU + dropout 0.5, dense 10.
Parameter names are ``conv1.weight``, ``conv1.bias``, ..., ``fc1.weight``, ``fc2.bias``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.core.params import ParamReader

MAX_PARAMETERS = 100_000_000  # weights of a CNN config (400 MB float32, 1.6 GB while Adam trains it); the default has 3.3M


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of :class:`CNN`; inputs are (N, in_channels, image_size, image_size) in [0, 1]."""

    conv_channels: tuple[int, ...] = (32, 64)
    kernel_size: int = 5
    padding: int = 2
    hidden: int = 1024
    dropout: float = 0.5
    num_classes: int = 10
    in_channels: int = 1
    image_size: int = 28

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, prefix: str = "train.architecture",
                  source: str = "params.yaml") -> CNNConfig:
        """Validate an architecture mapping (missing keys take the defaults; unknown keys are refused)."""
        return cls.from_reader(ParamReader(values, prefix, source))

    @classmethod
    def from_reader(cls, r: ParamReader) -> CNNConfig:
        """Validate the architecture group that ``r`` reads."""
        d = cls()
        cfg = cls(
            conv_channels=tuple(r.int_list("conv_channels", list(d.conv_channels))),
            kernel_size=r.int("kernel_size", d.kernel_size, min=1),
            padding=r.int("padding", d.padding, min=0),
            hidden=r.int("hidden", d.hidden, min=1),
            dropout=r.float("dropout", d.dropout, min=0.0, max=1.0, max_exclusive=True),
            num_classes=r.int("num_classes", d.num_classes, min=2),
            in_channels=r.int("in_channels", d.in_channels, min=1),
            image_size=r.int("image_size", d.image_size, min=1),
        )
        if cfg.kernel_size > cfg.image_size:
            raise r.fail("kernel_size", f"at most the image size ({cfg.image_size})", cfg.kernel_size)
        if cfg.padding >= cfg.kernel_size:
            raise r.fail("padding", f"less than kernel_size ({cfg.kernel_size}): wider padding only adds outputs "
                         "of zeros", cfg.padding)
        if cfg.flat_features() < 1:
            raise r.fail("conv_channels", f"a stack that leaves a feature map of at least 1x1 ({len(cfg.conv_channels)} "
                         f"conv + pool layers shrink {cfg.image_size} pixels to {cfg.feature_map_size()})",
                         list(cfg.conv_channels))
        if cfg.parameter_count() > MAX_PARAMETERS:
            raise r.fail("hidden", f"a size that keeps the CNN within {MAX_PARAMETERS:,} weights (conv_channels "
                         f"{list(cfg.conv_channels)} and hidden {cfg.hidden} make {cfg.parameter_count():,})",
                         cfg.hidden)
        r.done()
        return cfg

    def parameter_count(self) -> int:
        """The number of weights and biases of :class:`CNN` built from this config (nothing allocated)."""
        channels = (self.in_channels, *self.conv_channels)
        convs = sum(c_out * (c_in * self.kernel_size ** 2 + 1) for c_in, c_out in zip(channels[:-1], channels[1:]))
        return convs + self.hidden * (self.flat_features() + 1) + self.num_classes * (self.hidden + 1)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["conv_channels"] = list(self.conv_channels)
        return out

    def feature_map_size(self) -> int:
        size = self.image_size
        for _ in self.conv_channels:
            size = (size + 2 * self.padding - self.kernel_size + 1) // 2
        return size

    def flat_features(self) -> int:
        side = self.feature_map_size()
        return self.conv_channels[-1] * side * side if side > 0 else 0


class CNN(nn.Module):
    """conv -> ReLU -> max-pool 2 (per entry of conv_channels), then dense hidden + ReLU + dropout, dense out."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        channels = (config.in_channels, *config.conv_channels)
        self.conv_names = [f"conv{i + 1}" for i in range(len(config.conv_channels))]
        for name, c_in, c_out in zip(self.conv_names, channels[:-1], channels[1:]):
            setattr(self, name, nn.Conv2d(c_in, c_out, config.kernel_size, padding=config.padding))
        self.fc1 = nn.Linear(config.flat_features(), config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.fc2 = nn.Linear(config.hidden, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of images (N, C, H, W)."""
        for name in self.conv_names:
            x = F.max_pool2d(F.relu(getattr(self, name)(x)), 2)
        x = self.dropout(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W) grey or (N, H, W, C) colour -> float32 (N, 1, H, W) or (N, C, H, W) in [0, 1]."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


def build_cnn(config: CNNConfig, seed: int | None = None) -> CNN:
    """A freshly initialised CNN; with ``seed`` its initial weights are reproducible."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CNN(config)
    return CNN(config)
