"""The detectors stage's work: :func:`run` fits every detector of ``detectors.use`` that learns from
training features on the known concept's train split; :func:`write` saves their state without pickle
(:mod:`.fitted`)."""

from __future__ import annotations

import logging

from torch import nn

from gradmeta.cnn.model import to_tensor
from gradmeta.prepared import PreparedData
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import FittedDetectors, fit_detectors, save_detectors


def run(cfg: DetectorsConfig, model: nn.Module, train: PreparedData, model_sha256: str,
        log: logging.Logger | None = None) -> FittedDetectors:
    """The fitted detectors of ``model`` (on its device) from ``train``'s images and labels; ``log`` gets a
    line per detector. The images stay on the CPU; one chunk at a time goes to the model's device."""
    return fit_detectors(model, to_tensor(train.images), train.labels, cfg, model_sha256, log)


def write(fitted: FittedDetectors, out_path: str) -> None:
    """``models/detectors.npz``: float64 arrays and a JSON manifest, atomically."""
    save_detectors(out_path, fitted)
