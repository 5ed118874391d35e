"""The features table of a concept: one row per image, stored as a Parquet dataset directory
``data/features/<concept>/`` of K parts ``part-<k>.parquet`` (K = ``extract.shards``, 1 by
default), which pyarrow reads as one table; :func:`read_concept_features` reads and checks it.

Columns, in this order: ``concept``, ``index`` (position in the prepared file), ``label`` (true
class, -1 where none), ``pred``, ``correct`` (bool; always false for unknown concepts), the softmax
metrics ``softmax/<name>``, the gradient metrics ``grad/<parameter>/<stat>`` for every parameter
tensor then ``grad/all/<stat>``, ``baseline/gradnorm``, the gradient factors ``factor/<layer>/<factor>``,
the class probabilities ``prob/<c>``, then ``grad_<target>/...`` and ``detector/<name>``. Metric columns are float32. The file's
metadata (key ``gradmeta``) records the format, the model's sha256 and the extraction parameters,
and for a part its ``shard`` k and the number of ``shards`` K; the parts in order k = 0..K-1 hold
the concept's rows in order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gradmeta.core.atomic import atomic_path
from gradmeta.core.errors import GradmetaError
from gradmeta.core.jsontext import json_object
from gradmeta.core.params import ParamReader, as_params

FORMAT = "gradmeta.features/2"  # /2: a part of a concept's dataset directory
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
    meta = json_object(raw.decode("utf-8", "replace"), f"{p}: metadata") if raw else {}
    if meta.get("format") != FORMAT:
        raise GradmetaError(f"{p}: not a gradmeta features file (expected format {FORMAT})")
    frame = table.to_pandas()
    missing = [c for c in (*ID_COLUMNS, *required) if c not in frame.columns]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise GradmetaError(f"{p}: missing column {missing[0]!r}{more}")
    return frame, meta


def part_path(features_dir: str | os.PathLike[str], concept: str, shard: int) -> Path:
    """``<features_dir>/<concept>/part-<shard>.parquet``."""
    return Path(features_dir) / concept / f"part-{shard}.parquet"


def shard_count(params: Mapping[str, Any]) -> int:
    """K of ``extract.shards``, validated without reading the rest of the group (the meta and evaluate
    stages depend on this key of it alone)."""
    return read_shards(as_params(params).reader("extract"))


def read_shards(r: ParamReader) -> int:
    """K of the ``shards`` key of the ``extract`` group ``r`` (the shard indices ``[0, 1, ..., K-1]`` in
    order, K >= 1); a bad value is a GradmetaError naming the key."""
    shards = r.int_list("shards", [0], min=0)
    if not shards or shards != list(range(len(shards))):
        raise r.fail("shards", "the shard indices 0, 1, ..., K-1 in order, K >= 1 (e.g. [0] for one stage per "
                     "concept, [0, 1, 2, 3] for K = 4)", shards)
    return len(shards)


def read_concept_features(features_dir: str | os.PathLike[str], concept: str,
                          expected_shards: int | None = None) -> tuple[pd.DataFrame, dict[str, Any], list[Path]]:
    """A concept's whole table from its parts (in shard order), the metadata of part 0, and the part
    files beyond K found in the directory (left by a run with more shards; not read).

    Every part must be there and name its own shard, the same K, concept and model: a missing
    part is a GradmetaError naming the file and the stage that writes it. ``expected_shards``
    (``extract.shards``' K): parts made with another K are refused (the extract stages have not run
    for the params in force).
    """
    first = part_path(features_dir, concept, 0)
    if not first.parent.is_dir():
        raise GradmetaError(f"{first.parent}: no features of concept {concept!r} (run dvc repro extract@{concept}-0)")
    frames, meta0 = [], None
    shards = 1
    k = 0
    while k < shards:
        path = part_path(features_dir, concept, k)
        if not path.is_file():
            of = f" of {shards}" if meta0 is not None else ""
            raise GradmetaError(f"{path}: shard {k}{of} of concept {concept!r} is missing "
                                f"(run dvc repro extract@{concept}-{k})")
        frame, meta = read_features(path)
        if meta0 is None:
            meta0, shards = meta, meta.get("shards")
            if not isinstance(shards, int) or shards < 1:
                raise GradmetaError(f"{path}: not a part of a sharded features table (no 'shards' in its metadata)")
            if expected_shards is not None and shards != expected_shards:
                raise GradmetaError(f"{path}: made by {shards} extract shard(s), but params.yaml: extract.shards "
                                    f"names {expected_shards}; run dvc repro so the extract stages of the params "
                                    "in force write the features")
        if (meta.get("shard"), meta.get("shards"), meta.get("concept"), meta.get("model_sha256")) != (
                k, shards, concept, meta0.get("model_sha256")):
            raise GradmetaError(f"{path}: is shard {meta.get('shard')} of {meta.get('shards')} of concept "
                                f"{meta.get('concept')!r}, expected shard {k} of {shards} of {concept!r} from the "
                                "same model as part 0 (a part left from another run: rerun its extract stage)")
        _check_rows(frame, meta, path, frames[-1]["index"].iloc[-1] + 1 if frames else None)
        frames.append(frame)
        k += 1
    table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    _check_correct(table, meta0, first.parent, concept)
    stale = sorted(p for p in first.parent.glob("part-*.parquet")
                   if p.stem.removeprefix("part-").isdigit() and int(p.stem.removeprefix("part-")) >= shards)
    return table, meta0, stale


def _check_rows(frame: pd.DataFrame, meta: dict[str, Any], path: Path, after: int | None) -> None:
    """A part's ``index`` column (positions in the prepared data) must be the consecutive block its
    metadata's ``rows`` names ([first, end)), starting where the previous part ended (``after``): a
    concept's evaluation images are one consecutive block of its prepared data (the extract stage
    refuses others), so a row missing anywhere shows as a gap or a range that does not match."""
    rows = meta.get("rows")
    if not (isinstance(rows, list) and len(rows) == 2 and all(isinstance(r, int) for r in rows)):
        return  # a part written before the range existed: nothing to compare with
    index = frame["index"].to_numpy()
    expected_start = rows[0] if after is None else after
    if rows[0] != expected_start or len(index) != rows[1] - rows[0] or not np.array_equal(
            index, np.arange(rows[0], rows[1])):
        raise GradmetaError(f"{path}: holds {len(index)} rows where its metadata names the prepared images "
                            f"{rows[0]}..{rows[1] - 1}" + (f" (the previous part ended at {after - 1})" if after else "")
                            + "; rows were removed or the part was changed after extraction: rerun its extract stage")


def _check_correct(table: pd.DataFrame, meta: dict[str, Any], where: Path, concept: str) -> None:
    """``correct`` is not data but a function of the rest: label == pred for the known concept (its
    metadata's ``known``), False for every row of an unknown one. A column that disagrees was changed
    after extraction; the meta classifiers would learn a wrong target from it."""
    if "known" not in meta:
        return  # a part written before the flag existed: nothing to compare with
    expected = (table["label"].to_numpy() == table["pred"].to_numpy()) if meta["known"] else np.zeros(len(table), bool)
    bad = np.flatnonzero(table["correct"].to_numpy().astype(bool) != expected)
    if len(bad):
        kind = "label == pred" if meta["known"] else "False for every row of an unknown concept"
        raise GradmetaError(f"{where}: column correct is not {kind} in {len(bad)} row(s) (first: row {int(bad[0])}); "
                            f"the features were changed after extraction: rerun dvc repro extract@{concept}-0")

