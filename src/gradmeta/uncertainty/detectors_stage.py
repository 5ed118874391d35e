"""The detectors stage's work: :func:`run` fits every detector of ``detectors.use`` that learns from
training features on the known concept's train split; :func:`write` saves their state without pickle
(:mod:`.detectors.fitted`). How the stage runs is its own params group, ``detectors_stage``
(:class:`DetectorsStageConfig`): the extract stages read ``detectors`` only, so changing the threads or
the device of this stage reruns none of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from gradmeta.cnn.model import to_tensor
from gradmeta.core.params import Param, as_params, read_settings, setting, threads_param
from gradmeta.prepared import PreparedData
from gradmeta.runtime import DEVICES
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import FittedDetectors, fit_detectors, save_detectors


@dataclass(frozen=True)
class DetectorsStageConfig:
    """The ``detectors_stage`` parameter group: the stage's torch threads and device (the extract stages
    score with ``extract.threads`` and ``extract.device``)."""

    threads: int = setting(2, threads_param("torch's CPU threads of the detectors stage"))
    device: str = setting("cpu", Param(str, choices=DEVICES, doc="where the detectors stage runs the model"))
    params_file: str = "params.yaml"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DetectorsStageConfig:
        r = as_params(params).reader("detectors_stage")
        cfg = cls(**read_settings(cls, r), params_file=r.source)
        r.done()
        return cfg


def run(cfg: DetectorsConfig, model: nn.Module, train: PreparedData, model_sha256: str,
        log: logging.Logger | None = None) -> FittedDetectors:
    """The fitted detectors of ``model`` (on its device) from ``train``'s images and labels; ``log`` gets a
    line per detector. The images stay on the CPU; one chunk at a time goes to the model's device."""
    return fit_detectors(model, to_tensor(train.images), train.labels, cfg, model_sha256, log)


def write(fitted: FittedDetectors, out_path: str) -> None:
    """``models/detectors.npz``: float64 arrays and a JSON manifest, atomically."""
    save_detectors(out_path, fitted)
