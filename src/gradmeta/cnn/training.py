"""Training loop for the CNN: Adam, minibatches shuffled from a seeded generator, per-epoch curve."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gradmeta.cnn.architectures import read_architecture
from gradmeta.cnn.model import CNNConfig
from gradmeta.cnn.resnet import ResNetConfig
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, as_params, read_settings, seed_param, setting, threads_param
from gradmeta.runtime import DEVICES


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` parameter group."""

    seed: int = setting(0, seed_param("the weights' initialisation and the minibatch order"))
    epochs: int = setting(3, Param(int, min=1, doc="passes over the train split"))
    batch_size: int = setting(64, Param(int, min=1, doc="images per Adam step"))
    learning_rate: float = setting(1e-3, Param(float, min=0.0, min_exclusive=True, doc="Adam's step size"))
    val_fraction: float = setting(0.1, Param(float, min=0.0, max=1.0, max_exclusive=True,
                                             doc="of the known concept's train images held out for validation"))
    device: str = setting("cpu", Param(str, choices=DEVICES, doc="where the CNN trains"))
    threads: int = setting(2, threads_param("torch's CPU threads"))
    architecture: CNNConfig | ResNetConfig = field(default_factory=CNNConfig)
    checkpoint: str | None = setting(None, Param(str, allow_none=True, doc="your trained weights (a file in "
                                                 "user_data/checkpoints/): nothing is trained"))
    params_file: str = field(default="params.yaml", compare=False)

    OTHER_PARAMS: ClassVar[dict[str, str]] = {
        "architecture": "the model: kind (cnn, small_resnet, resnet18, ...) and its sizes (see The CNN)"}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        r = as_params(params).reader("train")
        cfg = cls(**read_settings(cls, r), architecture=read_architecture(r.group("architecture")),
                  params_file=r.source)
        r.done()
        return cfg


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays (train, validation) of a seeded permutation of range(n)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_fraction)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits (N, classes) of ``x`` in eval mode, on the model's device, returned on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(x[i: i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, model.config.num_classes)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` whose argmax logit equals ``y`` (nan for an empty set)."""
    if len(x) == 0:
        return float("nan")
    return (predict_logits(model, x).argmax(1) == y).double().mean().item()


def train_cnn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
              cfg: TrainConfig, device: torch.device, progress: bool = True,
              on_epoch: Callable[[dict[str, float], float], None] | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place with Adam; returns one record per epoch (loss, train and val accuracy), each
    also handed to ``on_epoch(record, seconds)`` as the epoch ends (the stage's log line).

    On the CPU a convolutional model trains in channels-last layout where its forward gives the same
    logits in it (the CPU kernels of convolution and pooling are several times faster there); the
    model is handed back in the standard layout. Same inputs and params, same weights, byte for byte.
    """
    model.to(device)
    layout = _training_layout(model, x[: cfg.batch_size].to(device))
    model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    generator = torch.Generator().manual_seed(cfg.seed)
    curve = []
    for epoch in range(1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total_loss, total_correct = 0.0, 0
        batches = range(0, len(x), cfg.batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=None if progress else True,
                          leave=False):
            idx = order[start: start + cfg.batch_size]
            xb, yb = x[idx].to(device).contiguous(memory_format=layout), y[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            value = loss.item()
            if not math.isfinite(value):
                raise GradmetaError(f"{cfg.params_file}: train.learning_rate {cfg.learning_rate:g} made the loss {value} in "
                                    f"epoch {epoch}, batch {start // cfg.batch_size + 1} (the weights diverged); lower it")
            optimizer.step()
            total_loss += value * len(idx)
            total_correct += int((logits.argmax(1) == yb).sum())
        curve.append({"epoch": epoch, "train_loss": total_loss / len(x), "train_accuracy": total_correct / len(x),
                      "val_accuracy": accuracy(model, x_val, y_val)})
        if on_epoch is not None:
            on_epoch(curve[-1], time.perf_counter() - epoch_start)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    for name, weight in model.state_dict().items():
        if weight.is_floating_point() and not bool(torch.isfinite(weight).all()):
            raise GradmetaError(f"{cfg.params_file}: train.learning_rate {cfg.learning_rate:g} made weight {name} NaN or "
                                "infinite (the weights diverged); lower it")
    return curve


def _training_layout(model: nn.Module, probe: torch.Tensor) -> torch.memory_format:
    """``channels_last`` for a CPU model with 2-D convolutions whose forward (eval mode) gives the
    same logits on channels-last inputs and weights; else the standard layout."""
    standard = torch.contiguous_format
    if probe.device.type != "cpu" or probe.dim() != 4 or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return standard
    relaid = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = model(probe)
            got = relaid(probe.contiguous(memory_format=torch.channels_last))
    except RuntimeError:
        return standard
    finally:
        model.train(was_training)
    same = got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    return torch.channels_last if same else standard
