"""The extract stage's work: :func:`run` computes the features table of one shard of a concept (the
metric table of :mod:`.table` plus the pipeline's columns and metadata, :mod:`.extraction`);
:func:`write` saves it as a Parquet part with its metadata."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from gradmeta.cnn.architectures import DEFAULT_KIND, check_geometry, kind_of
from gradmeta.core.concepts import Concepts, concept_names
from gradmeta.core.errors import GradmetaError
from gradmeta.core.kernels import kernels_mode
from gradmeta.features import write_features
from gradmeta.prepared import PreparedData
from gradmeta.uncertainty.detectors.base import Detector
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.extraction import ExtractConfig, evaluation_rows, extract_features


@dataclass(frozen=True)
class ExtractSettings:
    """Everything the extract stage reads from params, parsed once: the ``extract`` and ``detectors``
    groups and the concept names."""

    extract: ExtractConfig
    detectors: DetectorsConfig
    concepts: Concepts

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExtractSettings:
        return cls(ExtractConfig.from_params(params), DetectorsConfig.from_params(params), concept_names(params))

    def check(self, concept: str, shard: int, source: str) -> None:
        """The concept must be one of the params' and the shard one of ``extract.shards``."""
        if concept not in self.concepts.all:
            raise GradmetaError(f"{source}: --concept {concept!r} is not among the concepts "
                                f"({', '.join(self.concepts.all)})")
        if not 0 <= shard < self.extract.shards:
            raise GradmetaError(f"{source}: --shard {shard} is not among extract.shards (0..{self.extract.shards - 1})")


@dataclass
class ExtractResult:
    """One shard's features table, its file metadata, and the seconds of each part (for the log)."""

    frame: pd.DataFrame
    metadata: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0


def run(cfg: ExtractSettings, model: nn.Module, data: PreparedData, detectors: Mapping[str, Detector], shard: int,
        device: torch.device | str, model_sha256: str, progress: bool = True) -> ExtractResult:
    """The features table of shard ``shard`` of ``data``'s evaluation rows, computed by ``model``
    with ``detectors`` (those of ``detectors.use``, the fitted ones with the detectors stage's state:
    :func:`~.detectors.fitted.detector_instances`), and the metadata its Parquet file carries."""
    known = data.concept == cfg.concepts.known
    if hasattr(model, "config"):
        check_geometry(model.config, data.geometry, f"data/prepared/{data.concept}.npz")
    rows = evaluation_rows(data)
    if len(rows) and rows[-1] - rows[0] + 1 != len(rows):  # the features' row check relies on it
        raise GradmetaError(f"concept {data.concept!r}: its prepared evaluation images are not one consecutive block "
                            "of positions (train images between them); prepare it again with the download stage")
    parts: dict[str, float] = {}
    start = time.perf_counter()
    frame = extract_features(model, data, cfg.extract, device, progress, known=known, detectors=cfg.detectors,
                             instances=detectors, seconds=parts, shard=shard)
    total = time.perf_counter() - start
    metadata = {"concept": data.concept, "known": known, "source": data.source, "kind": data.kind,
                "provenance": data.provenance, "model_sha256": model_sha256, "extract": cfg.extract.to_dict(),
                "detectors": cfg.detectors.to_dict(), "shard": shard, "shards": cfg.extract.shards,
                "rows": [int(frame["index"].iloc[0]), int(frame["index"].iloc[-1]) + 1], "kernels": kernels_mode(),
                **model_record(model)}
    return ExtractResult(frame, metadata, parts, total)


def model_record(model: nn.Module) -> dict[str, Any]:
    """``{"model": {"kind", "checkpoint"?}}`` for the features' metadata when the model is not the paper's CNN
    trained by the pipeline (a zoo architecture, or a user's trained weights); nothing for the paper's CNN,
    whose features keep the bytes they always had."""
    config = getattr(model, "config", None)
    kind = DEFAULT_KIND if config is None else kind_of(config)
    checkpoint = getattr(model, "checkpoint_info", {}).get("checkpoint")
    if kind == DEFAULT_KIND and checkpoint is None:
        return {}
    return {"model": {"kind": kind, **({"checkpoint": checkpoint} if checkpoint else {})}}


def write(result: ExtractResult, out_path: str) -> None:
    """The shard's Parquet part (atomically), its metadata under the key ``gradmeta``."""
    write_features(out_path, result.frame, result.metadata)
