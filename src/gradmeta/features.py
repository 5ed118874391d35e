"""The features table (``data/features/<concept>.parquet``): one row per image.

Columns, in this order: ``concept``, ``index`` (position in the prepared file), ``label`` (true
class, -1 where none), ``pred``, ``correct`` (bool; always false for unknown concepts), the softmax
metrics ``softmax/<name>``, the gradient metrics ``grad/<parameter>/<stat>`` for every parameter
tensor then ``grad/all/<stat>``, and ``baseline/gradnorm``. Metric columns are float32. The file's
metadata (key ``gradmeta``) records the format, the model's sha256 and the extraction parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn
from tqdm import tqdm

from gradmeta.atomic import atomic_path
from gradmeta.datasets.concepts import KNOWN_CONCEPT
from gradmeta.datasets.prepared import PreparedData
from gradmeta.errors import GradmetaError
from gradmeta.params import ParamReader
from gradmeta.runtime import DEVICES
from gradmeta.training import to_tensor
from gradmeta.uncertainty.gradients import (
    ALL_STATISTICS,
    DEFAULT_CHUNK_SIZE,
    PAPER_STATISTICS,
    iterate_chunks,
    validate_statistics,
)
from gradmeta.uncertainty.softmax import softmax_metrics

FORMAT = "gradmeta.features/1"
ID_COLUMNS = ("concept", "index", "label", "pred", "correct")
GRADNORM_COLUMN = "baseline/gradnorm"
METADATA_KEY = b"gradmeta"


@dataclass(frozen=True)
class ExtractConfig:
    """The ``extract`` parameter group."""

    statistics: tuple[str, ...] = PAPER_STATISTICS
    chunk_size: int = DEFAULT_CHUNK_SIZE
    device: str = "cpu"
    threads: int = 2

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExtractConfig:
        r = ParamReader(params.get("extract"), "extract")
        d = cls()
        stats = r.str_list("statistics", list(d.statistics), choices=ALL_STATISTICS)
        try:
            validate_statistics(stats)
        except GradmetaError as exc:
            raise GradmetaError(f"params.yaml: extract.statistics: {exc}") from None
        return cls(statistics=tuple(stats), chunk_size=r.int("chunk_size", d.chunk_size, min=1),
                   device=r.str("device", d.device, choices=DEVICES), threads=r.int("threads", d.threads, min=1))

    def to_dict(self) -> dict[str, Any]:
        return {"statistics": list(self.statistics), "chunk_size": self.chunk_size, "device": self.device}


def evaluation_rows(data: PreparedData) -> np.ndarray:
    """Positions of the images a concept is evaluated on: the known concept's test split, else all."""
    if data.concept == KNOWN_CONCEPT:
        return np.nonzero(data.split == "test")[0]
    return np.arange(len(data))


def extract_features(model: nn.Module, data: PreparedData, cfg: ExtractConfig,
                     device: torch.device | str = "cpu", progress: bool = True) -> pd.DataFrame:
    """The features table of ``data``'s evaluation rows, computed by ``model`` (moved to ``device``)."""
    rows = evaluation_rows(data)
    model = model.to(device)
    images = to_tensor(data.images[rows])
    columns: dict[str, np.ndarray] = {}  # allocated once, filled chunk by chunk
    pred = np.empty(len(rows), dtype=np.int64)
    start = 0
    with tqdm(total=len(rows), desc=f"extract {data.concept}", unit="img", disable=None if progress else True,
              leave=False) as bar:
        for result, grads in iterate_chunks(model, images, cfg.statistics, "predicted", cfg.chunk_size,
                                            with_gradnorm=True, on_chunk=bar.update):
            chunk = {**softmax_metrics(result.logits.cpu()), **grads, GRADNORM_COLUMN: result.gradnorm.cpu()}
            if not columns:
                columns = {k: np.empty(len(rows), dtype=np.float64) for k in chunk}
            n = len(result.labels)
            pred[start: start + n] = result.labels.cpu().numpy()
            for k, v in chunk.items():
                columns[k][start: start + n] = v.double().numpy()
            start += n
    labels = data.labels[rows]
    correct = (pred == labels) if data.concept == KNOWN_CONCEPT else np.zeros(len(rows), dtype=bool)
    table = {"concept": np.full(len(rows), data.concept, dtype=object), "index": rows.astype(np.int64),
             "label": labels.astype(np.int64), "pred": pred.astype(np.int64), "correct": correct}
    for k, values in columns.items():
        if not np.isfinite(values).all():
            raise GradmetaError(f"{data.concept}: column {k} has non-finite values")
        table[k] = values.astype(np.float32)
    return pd.DataFrame(table)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Every metric column (softmax/, grad/, baseline/), in table order."""
    return [c for c in frame.columns if c not in ID_COLUMNS]


def write_features(path: str | os.PathLike[str], frame: pd.DataFrame, metadata: dict[str, Any]) -> None:
    """Write the table atomically as Parquet with ``metadata`` under the ``gradmeta`` key (same data, same bytes)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {METADATA_KEY: json.dumps({"format": FORMAT, **metadata}, sort_keys=True).encode()}
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=False)


def read_features(path: str | os.PathLike[str], required: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a features file and its metadata; a missing file, damaged file or missing column is a GradmetaError."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: features file not found (run the extract stage first)")
    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise GradmetaError(f"{p}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    meta = json.loads(raw) if raw else {}
    if meta.get("format") != FORMAT:
        raise GradmetaError(f"{p}: not a gradmeta features file (expected format {FORMAT})")
    frame = table.to_pandas()
    missing = [c for c in (*ID_COLUMNS, *required) if c not in frame.columns]
    if missing:
        raise GradmetaError(f"{p}: missing column {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return frame, meta
