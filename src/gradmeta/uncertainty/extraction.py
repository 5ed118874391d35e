"""The extract stage's features table of one prepared concept: the library's per-image metric table
(:func:`gradmeta.uncertainty.table.metric_table`) on the concept's evaluation images (one shard of
them), with the pipeline's own columns in front (concept, index, label, pred, correct).

Per evaluation image (every image outside the concept's train split): the softmax metrics
(:mod:`.softmax`), the gradient statistics of every parameter (:mod:`.gradients`), the GradNorm
baseline (:mod:`.gradnorm`), the factors of every ruled layer's gradient (``factor/...``), the class
probabilities (``prob/<c>``), then the gradient statistics of each further target
(``grad_<target>/...``) and the field's detectors (``detector/<name>``, :mod:`.detectors`), in the
column order of :mod:`gradmeta.features`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from gradmeta.cnn.model import to_tensor
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, as_params, read_settings, setting, threads_param
from gradmeta.features import read_shards
from gradmeta.prepared import PreparedData
from gradmeta.runtime import DEVICES
from gradmeta.uncertainty.detectors.base import Detector, logits_layer
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import detector_instances
from gradmeta.uncertainty.gradients import (
    ALL_STATISTICS,
    DEFAULT_CHUNK_SIZE,
    PAPER_STATISTICS,
    validate_statistics,
)
from gradmeta.uncertainty.model_pass import metric_columns
from gradmeta.uncertainty.shards import alignment, shard_block, shard_rows


@dataclass(frozen=True)
class ExtractConfig:
    """The ``extract`` parameter group."""

    statistics: tuple[str, ...] = setting(PAPER_STATISTICS, Param("strs", choices=ALL_STATISTICS,
                                                                  doc="the statistics of each gradient"))
    chunk_size: int = setting(DEFAULT_CHUNK_SIZE, Param(int, min=1, doc="images per forward and backward"))
    device: str = setting("cpu", Param(str, choices=DEVICES, doc="where the model runs"))
    threads: int = setting(2, threads_param("torch's CPU threads"))
    shards: int = 1  # K: each concept's extraction is K stages (params: extract.shards = [0, ..., K-1])

    OTHER_PARAMS: ClassVar[dict[str, str]] = {
        "shards": "the shard indices [0, 1, ..., K-1]: each concept's extraction is K stages (default [0])"}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExtractConfig:
        r = as_params(params).reader("extract")
        cfg = cls(**read_settings(cls, r), shards=read_shards(r))
        try:
            validate_statistics(cfg.statistics)
        except GradmetaError as exc:
            raise r.error("statistics", str(exc)) from None
        r.done()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {"statistics": list(self.statistics), "chunk_size": self.chunk_size, "device": self.device}


def evaluation_rows(data: PreparedData) -> np.ndarray:
    """Positions of the images a concept is evaluated on: every image outside its train split."""
    return np.nonzero(data.split != "train")[0]


def extract_features(model: nn.Module, data: PreparedData, cfg: ExtractConfig,
                     device: torch.device | str = "cpu", progress: bool = True, *, known: bool,
                     detectors: DetectorsConfig | None = None, instances: Mapping[str, Detector] | None = None,
                     seconds: dict[str, float] | None = None, shard: int = 0) -> pd.DataFrame:
    """The features table of ``data``'s evaluation rows, computed by ``model`` (moved to ``device``).

    ``known``: ``data`` is the concept the CNN learnt, so ``correct`` = prediction equals label;
    for an unknown concept every prediction is wrong (``correct`` all False). ``detectors``: add
    the column groups of its extra gradient targets and the ``detector/<name>`` scores of ``instances``
    (the detectors of ``detectors.use``, :func:`~.detectors.fitted.detector_instances`; when not given, they
    are built from their params, and a detector that learns from training features is refused: the
    detectors stage fits those). ``seconds``, when given, receives
    the wall time of each part for the stage log: the gradient targets together (one pass, keyed
    ``cross_entropy+<target>...``) and each detector.
    ``shard``: compute only that block of the evaluation rows of ``cfg.shards``
    (:func:`gradmeta.uncertainty.shards.shard_rows`); the blocks' tables, concatenated in order, are
    the unsharded table."""
    align = alignment(cfg.chunk_size, *((detectors.chunk_size,) if detectors is not None else ()))
    all_rows = evaluation_rows(data)
    rows = shard_rows(all_rows, shard, cfg.shards, align, data.concept)
    offset = shard_block(len(all_rows), shard, cfg.shards, align).start  # position of rows[0] among all_rows
    model = model.to(device)
    images = to_tensor(data.images[rows])
    with_detectors = {}
    if detectors is not None:
        if instances is None:
            instances = detector_instances(logits_layer(model, images[:1]), detectors, {})
        with_detectors = {"detectors": instances, "detector_chunk_size": detectors.chunk_size}
    pred, columns = metric_columns(model, images, cfg.statistics, () if detectors is None else detectors.targets,
                                   cfg.chunk_size, desc=f"extract {data.concept}", progress=progress, factors=True,
                                   probabilities=True, offset=offset, seconds=seconds, **with_detectors)
    labels = data.labels[rows]
    correct = (pred == labels) if known else np.zeros(len(rows), dtype=bool)
    table = {"concept": np.full(len(rows), data.concept, dtype=object), "index": rows.astype(np.int64),
             "label": labels.astype(np.int64), "pred": pred.astype(np.int64), "correct": correct}
    table.update({k: values.astype(np.float32) for k, values in columns.items()})  # finite: metric_columns checked
    return pd.DataFrame(table)
