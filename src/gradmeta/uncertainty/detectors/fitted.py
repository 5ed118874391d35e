"""The detectors stage's work: fit the detectors that need training state (Mahalanobis, KNN, ViM,
ReAct, and any registered with ``fitted=True``) on the penultimate features of the known concept's
train split, and save their state without pickle (``models/detectors.npz``: a JSON manifest plus
float64 arrays ``<detector>/<name>``), so the extract stage scores every image with exactly the
same state. :func:`detector_instances` makes every detector of ``detectors.use`` for the extract stage:
the fitted ones from that state, the others from their params."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gradmeta.core.atomic import write_bytes
from gradmeta.core.concepts import MAX_IMAGES
from gradmeta.core.errors import GradmetaError
from gradmeta.core.jsontext import json_object
from gradmeta.core.npzfile import NpzArchive
from gradmeta.core.params import shown
from gradmeta.uncertainty.detectors.base import Detector, FeatureDetector, ModelSizes, features_of, logits_layer
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.registry import REGISTRY, detector_spec

FORMAT = "gradmeta.detectors/1"


@dataclass
class FittedDetectors:
    """Fitted feature detectors by name, with the config and the model they were fitted on."""

    config: DetectorsConfig
    detectors: dict[str, FeatureDetector]
    model_sha256: str


def fresh_detector(name: str, head: nn.Linear, cfg: DetectorsConfig) -> Detector:
    """The unfitted registered detector ``name`` from its params, for the model whose logits layer is ``head``."""
    return detector_spec(name).cls.from_params(dict(cfg.params[name]), head)


def detector_instances(head: nn.Linear, cfg: DetectorsConfig, fitted: Mapping[str, Detector]) -> dict[str, Detector]:
    """name -> detector for every name of ``cfg.use``, in order: those fitted on training features
    from ``fitted`` (the detectors stage's state), the others built from their params for the model whose
    logits layer is ``head`` (:func:`logits_layer`, found once for all of them)."""
    out: dict[str, Detector] = {}
    for name in cfg.use:
        if REGISTRY[name].fitted:
            if name not in fitted:
                raise GradmetaError(f"detector {name!r} has no fitted state: run the detectors stage")
            out[name] = fitted[name]
        else:
            out[name] = fresh_detector(name, head, cfg)
    return out


def fit_detectors(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | np.ndarray, cfg: DetectorsConfig,
                  model_sha256: str, log: logging.Logger | None = None) -> FittedDetectors:
    """Fit every detector of ``cfg.use`` that is fitted on training features on ``images`` (the known
    concept's train split, as the model takes them) and their ``labels``, from one pass of
    penultimate features (KNN's bank: a seeded subsample of ``detectors.knn.bank_size``). ``log``, when
    given, receives a line per step (the features, then each detector: done / total, seconds)."""
    wanted = cfg.fitted_names()
    labels = torch.as_tensor(labels)
    fitted: dict[str, FeatureDetector] = {}
    if wanted:
        if len(images) == 0:
            raise GradmetaError("no images to compute penultimate features of")
        head = logits_layer(model, images[:1])
        cfg.check_sizes(ModelSizes(head.in_features, head.out_features, len(images)))  # before the long part
        # a bar on a terminal (none in a log file: tqdm's disable=None), the log lines printed above it
        with logging_redirect_tqdm(), tqdm(total=len(wanted) + 1, desc="detectors", unit="step", disable=None,
                                           leave=False) as bar:
            start = time.perf_counter()
            z, _ = features_of(model, images, cfg.chunk_size, head)
            bar.update()
            if log is not None:
                log.info("penultimate features of %d train images in %.1f s", len(images), time.perf_counter() - start)
            for i, name in enumerate(wanted, 1):
                start = time.perf_counter()
                fitted[name] = fresh_detector(name, head, cfg).fit_features(z, labels)
                bar.update()
                if log is not None:
                    log.info("fitted %s (%d of %d) in %.1f s", name, i, len(wanted), time.perf_counter() - start)
    return FittedDetectors(cfg, fitted, model_sha256)


def save_detectors(path: str | os.PathLike[str], fitted: FittedDetectors) -> None:
    """Write ``fitted`` atomically as a pickle-free npz; same state, same bytes."""
    arrays: dict[str, np.ndarray] = {}
    for name, detector in fitted.detectors.items():
        for key, value in detector.state().items():
            arrays[f"{name}/{key}"] = value.detach().cpu().double().numpy()
    manifest = {"format": FORMAT, "config": fitted.config.to_dict(), "detectors": list(fitted.detectors),
                "model_sha256": fitted.model_sha256}
    buf = io.BytesIO()
    np.savez(buf, manifest=np.array(json.dumps(manifest, sort_keys=True)), **arrays)
    write_bytes(path, buf.getvalue())


def load_detectors(path: str | os.PathLike[str], head: nn.Linear, cfg: DetectorsConfig,
                   model_sha256: str | None = None) -> dict[str, FeatureDetector]:
    """The fitted feature detectors of ``path`` for the model whose logits layer is ``head``
    (:func:`logits_layer`); the file must have been fitted with the same detector params and, when
    ``model_sha256`` is given, on the model file of that sha256 (else it is stale: rerun the detectors
    stage)."""
    with NpzArchive(path, "fitted detectors file", "run the detectors stage first") as npz:
        if "manifest" not in npz.names:
            raise GradmetaError(f"{path}: not a gradmeta detectors file (no manifest)")
        manifest: dict[str, Any] = json_object(str(npz.array("manifest")), f"{path}: manifest")
        if manifest.get("format") != FORMAT:
            raise GradmetaError(f"{path}: expected format {FORMAT}, got {shown(manifest.get('format'))}")
        if manifest.get("config") != cfg.to_dict():
            raise GradmetaError(f"{path}: fitted with other detector params than params.yaml; rerun the detectors stage")
        if model_sha256 is not None and manifest.get("model_sha256") != model_sha256:
            raise GradmetaError(f"{path}: fitted on another model than this cnn.pt (sha256 "
                                f"{str(manifest.get('model_sha256'))[:12]}..., the model's {model_sha256[:12]}...); "
                                "rerun the detectors stage")
        names = manifest.get("detectors")
        if not isinstance(names, list) or not all(n in REGISTRY and REGISTRY[n].fitted for n in names):
            raise GradmetaError(f"{path}: not a gradmeta detectors file (detectors {names!r})")
        bound = _state_bound(cfg, head.in_features, head.out_features)
        states = {name: {key.split("/", 1)[1]: _finite_state(npz, key, bound) for key in npz.names
                         if key.startswith(f"{name}/")} for name in names}
    out = {}
    for name, state in states.items():
        try:
            out[name] = fresh_detector(name, head, cfg).restore(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise GradmetaError(f"{path}: damaged state of {name} ({exc})") from None
    return out


def _state_bound(cfg: DetectorsConfig, features: int, classes: int) -> tuple[int, int]:
    """(largest dimension, most elements) a state array fitted with ``cfg`` on a model of ``features``
    penultimate features and ``classes`` logits can declare: a bank has at most its ``bank_size`` rows
    (every train image, at most MAX_IMAGES, where that is null) of at most D + 1 + C values; a
    covariance or basis at most (C + 2) (D + 1)^2 values. A header beyond it is refused unread."""
    banks = [cfg.param(n, "bank_size") for n in ("knn", "grad_knn") if n in cfg.use]
    rows = max([MAX_IMAGES if b is None else b for b in banks], default=0)
    side = max(rows, features + 1, classes)
    return side, max(rows * (features + 1 + classes), (classes + 2) * (features + 1) ** 2)


def _finite_state(npz: NpzArchive, key: str, bound: tuple[int, int]) -> torch.Tensor:
    """One state array as float64, refused (naming the file and the member) unless every value is finite:
    a fitted state never holds NaN or infinity, so one there is damage, not a property of the data.
    Its declared shape is checked against ``bound`` (:func:`_state_bound`) before anything is read."""
    def expect(shape: tuple[int, ...], dtype: np.dtype) -> None:
        side, elements = bound
        if len(shape) > 3 or any(d > side for d in shape) or int(np.prod(shape, dtype=np.float64)) > elements:
            raise GradmetaError(f"{npz.path}: state {key} declares shape {shape}, larger than detectors of these "
                                f"params fitted on this model can have; rerun the detectors stage")

    array = npz.array(key, expect)
    if array.dtype.kind != "f":
        raise GradmetaError(f"{npz.path}: damaged state {key} ({array.dtype}, expected floats); "
                            "rerun the detectors stage")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise GradmetaError(f"{npz.path}: damaged state {key} ({bad} NaN or infinite values); "
                            "rerun the detectors stage")
    return torch.from_numpy(array)
