"""The model zoo: ``train.architecture.kind`` names an architecture, its params are the rest of the group.

=================  ===========================================================================  =============
kind               what                                                                         file
=================  ===========================================================================  =============
``cnn``            the paper's CNN (the default; its checkpoint keeps the bytes it always had)  ``model.py``
``resnet18_32x32`` CIFAR ResNet-18 in the key layout of the field's published checkpoints       ``resnet.py``
``small_resnet``   the same design, a few narrow blocks: trains on two CPU cores in minutes      ``resnet.py``
=================  ===========================================================================  =============

Every architecture's config has ``num_classes``, ``in_channels``, ``to_dict()`` and ``parameter_count()``, and is
read from the group (its ``kind`` asked for first); its model takes images in [0, 1] (N, C, H, W) and returns
logits (N, classes). A new architecture is one file with its config and module, and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradmeta.cnn.model import CNN, CNNConfig
from gradmeta.cnn.resnet import KINDS as RESNET_KINDS
from gradmeta.cnn.resnet import ResNet, ResNetConfig
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import ParamReader
from gradmeta.geometry import Geometry

DEFAULT_KIND = "cnn"


@dataclass(frozen=True)
class Architecture:
    """A zoo entry: how its config is read and which module it builds."""

    read: Callable[[ParamReader, str], Any]
    model: Callable[[Any], nn.Module]


ARCHITECTURES: dict[str, Architecture] = {
    "cnn": Architecture(lambda r, kind: CNNConfig.from_reader(r), CNN),
    **{kind: Architecture(ResNetConfig.from_reader, ResNet) for kind in RESNET_KINDS},
}


def read_architecture(r: ParamReader) -> CNNConfig | ResNetConfig:
    """The architecture config of the group ``r`` reads (``kind`` picks the zoo entry, ``cnn`` by default);
    each entry bounds its own size (:data:`gradmeta.cnn.model.MAX_PARAMETERS` weights) before anything is built."""
    kind = r.str("kind", DEFAULT_KIND, choices=tuple(ARCHITECTURES))
    return ARCHITECTURES[kind].read(r, kind)


def architecture_from_dict(values: dict[str, Any] | None, prefix: str = "train.architecture",
                           source: str = "params.yaml") -> CNNConfig | ResNetConfig:
    """:func:`read_architecture` of a plain mapping (a saved checkpoint's config); errors name ``prefix``."""
    return read_architecture(ParamReader(values, prefix, source))


def kind_of(config: CNNConfig | ResNetConfig) -> str:
    """The zoo name of a config (a :class:`CNNConfig` is ``cnn``; its saved dict has no ``kind``)."""
    return getattr(config, "kind", DEFAULT_KIND)


def model_of(config: CNNConfig | ResNetConfig) -> nn.Module:
    """A freshly initialised model of ``config`` (use :func:`gradmeta.cnn.model.build_model` for a seeded one)."""
    kind = kind_of(config)
    if kind not in ARCHITECTURES:
        raise GradmetaError(f"unknown architecture kind {kind!r}; the zoo has {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[kind].model(config)


def build_model(config: CNNConfig | ResNetConfig, seed: int | None = None) -> nn.Module:
    """A freshly initialised model of ``config``; with ``seed`` its initial weights are reproducible (the
    caller's random streams are left as they were)."""
    if seed is None:
        return model_of(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_of(config)


def check_geometry(config: CNNConfig | ResNetConfig, geometry: Geometry, where: str) -> None:
    """Refuse an architecture that cannot take the pipeline's images: ``in_channels`` must be the images'
    channels, and the paper's CNN (whose dense layer is sized by it) needs ``image_size`` = height = width.
    ``where`` names the params file."""
    if config.in_channels != geometry.channels:
        raise GradmetaError(f"{where}: the images are {geometry.describe()} (data.image, or the known concept's "
                            f"source), but train.architecture.in_channels is {config.in_channels}; set it to "
                            f"{geometry.channels}")
    if kind_of(config) == "cnn" and (geometry.height, geometry.width) != (config.image_size, config.image_size):
        raise GradmetaError(f"{where}: the images are {geometry.describe()}, but the cnn's "
                            f"train.architecture.image_size is {config.image_size} (it needs square images of "
                            "that side); set it, or data.image")
