"""The detectors of ``detectors.use`` as objects, ready to score a concept's images into the features
table's ``detector/<column>`` columns (gradmeta's sign: higher = more likely in-distribution and correct).

Each detector names its columns (:meth:`Detector.columns`): ``detector/<name>`` for one score
(``detector/mahalanobis``, ``detector/knn``, ``detector/vim``, ``detector/react`` from the fitted
state, ``detector/odin`` as T log of the paper's score), and MC dropout's three,
``detector/mc_entropy``, ``detector/mc_mutual_information``, ``detector/mc_variation_ratio``.
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import Detector, logits_layer
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import fresh_detector
from gradmeta.uncertainty.detectors.registry import REGISTRY


def detector_instances(model: nn.Module, probe: torch.Tensor, cfg: DetectorsConfig,
                       fitted: dict[str, Detector]) -> dict[str, Detector]:
    """name -> detector for every name of ``cfg.use``, in order: those fitted on training features
    from ``fitted`` (the detectors stage's state), the others built from their params for ``model``
    (``probe``: one input it takes; its logits layer is found once, for all of them)."""
    out: dict[str, Detector] = {}
    head = logits_layer(model, probe) if any(not REGISTRY[name].fitted for name in cfg.use) else None
    for name in cfg.use:
        if REGISTRY[name].fitted:
            if name not in fitted:
                raise GradmetaError(f"detector {name!r} has no fitted state: run the detectors stage")
            out[name] = fitted[name]
        else:
            out[name] = fresh_detector(name, head, cfg)
    return out
