"""The train stage's work: :func:`run` fits the model (a zoo architecture) on the known concept's train split,
or loads the user's trained weights (``train.checkpoint``), and measures it; :func:`write` saves the model,
its metrics and its curve."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gradmeta.cnn.architectures import build_model, check_geometry, model_of
from gradmeta.cnn.checkpoint import check_weights, file_sha256, read_state_dict, save_model
from gradmeta.cnn.model import to_tensor
from gradmeta.cnn.training import TrainConfig, accuracy, predict_logits, train_cnn, train_val_split
from gradmeta.core.atomic import round_floats, write_json
from gradmeta.core.errors import GradmetaError
from gradmeta.core.kernels import kernels_mode
from gradmeta.core.params import shown
from gradmeta.prepared import PreparedData
from gradmeta.runtime import configure, resolve_device


@dataclass
class TrainedCNN:
    """The trained model (on the CPU), its metrics (``metrics/train.json``) and per-epoch curve."""

    model: nn.Module
    metrics: dict[str, Any]
    curve: list[dict[str, float]]
    train_size: int


def check_labels(data: PreparedData, num_classes: int, where: str) -> None:
    """The known concept needs a label in 0..num_classes-1 on every train and test image."""
    used = data.labels[np.isin(data.split, ("train", "test"))]
    if len(used) and used.min() < 0:
        raise GradmetaError(f"{where}: concept {data.concept!r} has images without labels; data.known must name "
                            "a concept with labels")
    if len(used) and used.max() >= num_classes:
        raise GradmetaError(f"{where}: concept {data.concept!r} has labels up to {int(used.max())}; set "
                            f"train.architecture.num_classes to {int(used.max()) + 1} (now {num_classes})")


def run(cfg: TrainConfig, data: PreparedData, log: logging.Logger, where: str = "data") -> TrainedCNN:
    """Train a fresh model of ``cfg.architecture`` on ``data``'s train split (minus ``cfg.val_fraction``
    for validation), or, with ``cfg.checkpoint``, load the user's trained weights and train nothing; then
    evaluate it on the test split. Threads, seeds and determinism are set from ``cfg`` first."""
    device = resolve_device(cfg.device, f"{cfg.params_file}: train.device")
    configure(cfg.threads, cfg.seed)
    train, test = data.select("train"), data.select("test")
    if len(train) < 2 or len(test) < 1:
        raise GradmetaError(f"{where}: need a train split of at least 2 images and a test split, "
                            f"got {len(train)} train and {len(test)} test")
    check_labels(data, cfg.architecture.num_classes, where)
    check_geometry(cfg.architecture, data.geometry, cfg.params_file)
    x, y = to_tensor(train.images), torch.from_numpy(train.labels)
    x_test, y_test = to_tensor(test.images), torch.from_numpy(test.labels)
    if cfg.checkpoint is not None:
        classes = int(max(train.labels.max(), test.labels.max())) + 1
        if cfg.architecture.num_classes != classes:
            raise GradmetaError(f"{cfg.params_file}: train.checkpoint: a model of {cfg.architecture.num_classes} classes "
                                f"(train.architecture.num_classes) for concept {data.concept!r}, whose labels are "
                                f"0..{classes - 1}: a checkpoint must be trained on the known concept's classes")
        model, record = pretrained(cfg, log)
        train_idx, val_idx, curve = np.arange(len(train)), np.arange(0), []
        log.info("%s: %d train / %d test images (%s, %s): trained nothing, weights of %s", data.concept, len(train),
                 len(test), data.kind, data.source, cfg.checkpoint)
    else:
        model, record = None, None
        train_idx, val_idx = train_val_split(len(train), cfg.val_fraction, cfg.seed)
        classes = cfg.architecture.num_classes
        if len(train_idx) < classes:
            raise GradmetaError(f"{cfg.params_file}: train.val_fraction {cfg.val_fraction:g} leaves {len(train_idx)} "
                                f"of {len(train)} train images to train on, fewer than the {classes} classes; lower it")
        log.info("%s: %d train / %d validation / %d test images (%s, %s) on %s", data.concept, len(train_idx),
                 len(val_idx), len(test), data.kind, data.source, device)
        model = build_model(cfg.architecture, seed=cfg.seed)
        start = time.perf_counter()
        curve = train_cnn(model, x[train_idx], y[train_idx], x[val_idx], y[val_idx], cfg, device,
                          on_epoch=lambda record, seconds: log.info(epoch_line(record, cfg.epochs, seconds)))
        seconds = time.perf_counter() - start
        log.info("trained %d epochs in %.1f s (%.0f images/s)", cfg.epochs, seconds,
                 cfg.epochs * len(train_idx) / seconds)
    model.cpu()
    test_errors = int((predict_logits(model, x_test).argmax(1) != y_test).sum())
    metrics = {
        "concept": data.concept,
        "source": data.source,
        "kind": data.kind,
        "epochs": 0 if record else cfg.epochs,
        # the last epoch's accuracy over its batches, counted as it trained (dropout on, the weights moving): the
        # train split is not scored once more; a checkpoint, which trained nothing here, is scored on it
        "train_accuracy": curve[-1]["train_accuracy"] if curve else accuracy(model, x[train_idx], y[train_idx]),
        "val_accuracy": curve[-1]["val_accuracy"] if len(val_idx) else None,
        "test_accuracy": 1.0 - test_errors / len(test),
        "test_errors": test_errors,
        "test_size": len(test),
        "kernels": kernels_mode(),
        **({"checkpoint": record} if record else {}),
    }
    log.info("test accuracy %.4f (%d errors of %d)", metrics["test_accuracy"], test_errors, len(test))
    return TrainedCNN(model, metrics, curve, len(train_idx))


def epoch_line(record: dict[str, float], epochs: int, seconds: float) -> str:
    """The log line of one epoch: ``epoch 2/3: loss 0.1234, train accuracy 0.9612, validation accuracy
    0.9580, 41.2 s`` (a line in every log, a TTY's or not; the bars vanish, the lines stay)."""
    val = record["val_accuracy"]
    return (f"epoch {int(record['epoch'])}/{epochs}: loss {record['train_loss']:.4f}, train accuracy "
            f"{record['train_accuracy']:.4f}, validation accuracy {'n/a' if val != val else f'{val:.4f}'}, "
            f"{seconds:.1f} s")


CHECKPOINTS = Path("user_data/checkpoints")  # where a user's trained weights live (a dep of the train stage)


def checked_checkpoint(cfg: TrainConfig, root: Path | None = None) -> Path:
    """``cfg.checkpoint``, checked: relative, inside :data:`CHECKPOINTS` of ``root`` (the repository: the train
    stage depends on that folder, so a new or changed file there reruns it) once symlinks are followed, existing."""
    where = f"{cfg.params_file}: train.checkpoint"
    path = Path(str(cfg.checkpoint))
    root = (root or Path.cwd()).resolve()
    if path.is_absolute() or not path.resolve().is_relative_to(root / CHECKPOINTS):
        raise GradmetaError(f"{where} must lie in {CHECKPOINTS}/ of the repository (the train stage's dep, "
                            f"tracked there with dvc add), got {shown(str(path))}")
    if not path.is_file():
        hint = (f"`dvc pull {path}.dvc` fetches it" if Path(f"{path}.dvc").is_file()
                else f"put it there and track it: `dvc add {path}`, then commit {path}.dvc")
        raise GradmetaError(f"{where}: {path} does not exist; {hint}")
    return path


def pretrained(cfg: TrainConfig, log: logging.Logger) -> tuple[nn.Module, dict[str, str]]:
    """The model of ``cfg.architecture`` with the weights of ``cfg.checkpoint`` (checked name by name against
    the architecture before it is built), in eval mode, and the record of the file (path and sha256)."""
    path = checked_checkpoint(cfg)
    weights = read_state_dict(path)
    check_weights(weights, cfg.architecture, path)
    model = model_of(cfg.architecture)
    model.load_state_dict(weights)
    return model.eval(), {"path": path.as_posix(), "sha256": file_sha256(path)}


@dataclass(frozen=True)
class TrainPaths:
    """Where the train stage writes: the checkpoint, ``train.json`` and the per-epoch curve."""

    model: str = "models/cnn.pt"
    metrics: str = "metrics/train.json"
    curve: str = "metrics/train_curve.json"


def write(trained: TrainedCNN, cfg: TrainConfig, paths: TrainPaths) -> None:
    """Save the model (with where it came from), its metrics and curve, each atomically."""
    checkpoint = trained.metrics.get("checkpoint")
    save_model(paths.model, trained.model, info={"source": trained.metrics["source"], "train_size": trained.train_size,
                                                 "seed": cfg.seed, **({"checkpoint": checkpoint} if checkpoint else {})})
    write_json(paths.metrics, round_floats(trained.metrics))
    write_json(paths.curve, round_floats(trained.curve))
