"""CIFAR-style residual networks (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, in
the 3x3-stem form used for 32x32 images): ``resnet18_32x32`` and ``small_resnet``.

``resnet18_32x32`` has the module names and state_dict keys of the CIFAR ResNet-18 the field publishes
checkpoints for (OpenOOD v1.5's ``ResNet18_32x32``): ``conv1``, ``bn1`` (3x3 stem, stride 1, no max-pool),
``layer1`` .. ``layer4`` of two basic blocks each (64, 128, 256, 512 channels; stride 2 from ``layer2`` on),
each block ``conv1``/``bn1``/``conv2``/``bn2`` and ``shortcut.0``/``shortcut.1`` (a 1x1 convolution and a
BatchNorm where the shape changes, else nothing), global average pooling and ``fc``. Its checkpoint loads
as it is. ``small_resnet`` is the same design with fewer, narrower blocks (16, 32, 64 channels, one block
each by default) that trains on two CPU cores in minutes.

Inputs are images in [0, 1] (N, C, H, W); the per-channel normalisation ``(x - mean) / std`` of the
architecture's params is the model's first step (buffers outside the state_dict), so every stage and the
library see the same function of the stored uint8 image, and a published checkpoint keeps its keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.cnn.model import MAX_PARAMETERS
from gradmeta.core.params import ParamReader

RESNET18 = {"widths": (64, 128, 256, 512), "blocks": (2, 2, 2, 2)}
SMALL = {"widths": (16, 32, 64), "blocks": (1, 1, 1)}
KINDS = {"resnet18_32x32": RESNET18, "small_resnet": SMALL}
# CIFAR-10's per-channel mean and std of pixels in [0, 1] (the normalisation OpenOOD's CIFAR-10 models use)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture of :class:`ResNet`; inputs (N, in_channels, image_size, image_size) in [0, 1]."""

    kind: str = "small_resnet"
    widths: tuple[int, ...] = SMALL["widths"]
    blocks: tuple[int, ...] = SMALL["blocks"]
    num_classes: int = 10
    in_channels: int = 1
    image_size: int = 28
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    @classmethod
    def from_reader(cls, r: ParamReader, kind: str) -> ResNetConfig:
        """Validate the architecture group ``r`` reads for ``kind`` (widths and blocks only for small_resnet;
        ResNet-18's are fixed by its published layout)."""
        shape = KINDS[kind]
        if kind == "small_resnet":
            widths = tuple(r.int_list("widths", list(shape["widths"])))
            blocks = tuple(r.int_list("blocks", list(shape["blocks"])))
            if len(blocks) != len(widths):
                raise r.fail("blocks", f"one count per entry of widths ({len(widths)})", list(blocks))
        else:
            widths, blocks = shape["widths"], shape["blocks"]
        in_channels = r.int("in_channels", 1, min=1, max=4)
        default_mean, default_std = ((CIFAR10_MEAN, CIFAR10_STD) if in_channels == 3
                                     else ((0.5,) * in_channels, (0.5,) * in_channels))
        cfg = cls(kind=kind, widths=widths, blocks=blocks, num_classes=r.int("num_classes", 10, min=2),
                  in_channels=in_channels, image_size=r.int("image_size", 28, min=4, max=1024),
                  mean=_per_channel(r, "mean", default_mean, in_channels, positive=False),
                  std=_per_channel(r, "std", default_std, in_channels, positive=True))
        if cfg.parameter_count() > MAX_PARAMETERS:
            raise r.fail("widths", f"widths that keep the network within {MAX_PARAMETERS:,} weights (these make "
                         f"{cfg.parameter_count():,})", list(cfg.widths))
        r.done()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.kind != "small_resnet":  # a published layout: its widths and blocks are not parameters
            del out["widths"], out["blocks"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def parameter_count(self) -> int:
        """Weights and biases (BatchNorm's included, running statistics not) of the network; nothing allocated."""
        count = self.widths[0] * (self.in_channels * 9 + 2)  # stem conv (no bias) + bn
        c_in = self.widths[0]
        for stage, (width, n) in enumerate(zip(self.widths, self.blocks)):
            for block in range(n):
                stride = 2 if stage > 0 and block == 0 else 1
                count += width * (c_in * 9 + 2) + width * (width * 9 + 2)
                if stride != 1 or c_in != width:
                    count += width * (c_in + 2)
                c_in = width
        return count + self.num_classes * (c_in + 1)


def _per_channel(r: ParamReader, key: str, default: tuple[float, ...], channels: int, positive: bool) -> tuple[float, ...]:
    value = r.raw(key, list(default))
    ok = (isinstance(value, list) and len(value) == channels
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and (v > 0 if positive else True)
                  for v in value))
    if not ok:
        kind = "numbers > 0" if positive else "numbers"
        raise r.fail(key, f"a list of {channels} {kind} (one per input channel)", value)
    return tuple(float(v) for v in value)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm, added to the input (or to its 1x1-projected shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """3x3 stem, stages of basic blocks, global average pooling, ``fc``: logits (N, num_classes)."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        shape = (1, config.in_channels, 1, 1)
        self.register_buffer("mean", torch.tensor(config.mean).reshape(shape), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).reshape(shape), persistent=False)
        self.conv1 = nn.Conv2d(config.in_channels, config.widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(config.widths[0])
        c_in = config.widths[0]
        self.stage_names = []
        for stage, (width, n) in enumerate(zip(config.widths, config.blocks)):
            blocks = [BasicBlock(c_in if b == 0 else width, width, 2 if stage > 0 and b == 0 else 1) for b in range(n)]
            name = f"layer{stage + 1}"
            setattr(self, name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            c_in = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of images (N, C, H, W) in [0, 1]."""
        x = F.relu(self.bn1(self.conv1((x - self.mean) / self.std)))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(self.avgpool(x).flatten(1))
