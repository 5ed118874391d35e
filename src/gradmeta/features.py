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
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gradmeta.core.atomic import atomic_path
from gradmeta.core.errors import GradmetaError

FORMAT = "gradmeta.features/1"
ID_COLUMNS = ("concept", "index", "label", "pred", "correct")
GRADNORM_COLUMN = "baseline/gradnorm"
METADATA_KEY = b"gradmeta"


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
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise GradmetaError(f"{p}: missing column {missing[0]!r}{more}")
    return frame, meta
