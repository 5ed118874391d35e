"""Saving and loading fitted meta classifiers (``models/meta/meta.npz``), without pickle.

A file that a DVC remote hands around must not be able to run code when read. The file is an npz
read with ``allow_pickle=False``; it holds ``manifest`` (JSON: format, the meta config, the
inputs, the sources, and per repeat every model's key, kind and scalar state) and plain numeric
arrays: the splits' row positions and each model's fitted arrays (logistic regression: signed-log
scales, standardiser, coefficients; XGBoost: the booster in XGBoost's own UBJSON model format; a
single metric: nothing beyond its scalars; each classifier's ``state()`` says). Loading accepts only
the known model kinds (:func:`classifier_kind`), rebuilds each with its class's ``from_state`` and
checks every array's dtype and shape before use; the rebuilt models score exactly as the fitted ones.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np

from gradmeta.core.atomic import write_bytes
from gradmeta.core.concepts import Concepts
from gradmeta.core.errors import GradmetaError
from gradmeta.core.jsontext import json_object
from gradmeta.core.npzfile import NpzArchive
from gradmeta.meta.classifiers import ThresholdedClassifier, classifier_kind
from gradmeta.meta.config import MetaConfig
from gradmeta.meta.fitting import FittedMeta
from gradmeta.meta.inputs import Inputs
from gradmeta.meta.scenarios import Split

FORMAT = "gradmeta.meta/5"  # /5: REL-U on the class probabilities; /4: the C of each logistic fit, XGBoost rounds


# ------------------------------------------------------------------------------------- saving
def fitted_to_bytes(fitted: FittedMeta) -> bytes:
    """The npz bytes of ``fitted`` (same fit, same bytes)."""
    arrays: dict[str, np.ndarray] = {}
    repeats = []
    for r, (splits, models) in enumerate(zip(fitted.splits, fitted.models)):
        for concept, split in splits.items():
            arrays[f"split/{r}/{concept}/train"] = np.asarray(split.train, dtype=np.int64)
            arrays[f"split/{r}/{concept}/test"] = np.asarray(split.test, dtype=np.int64)
        entries = []
        for i, ((fit, inp, clf), model) in enumerate(models.items()):
            scalars, model_arrays = model.state()
            entries.append({"fit": fit, "input": inp, "classifier": clf, **scalars})
            arrays.update({f"model/{r}/{i}/{k}": v for k, v in model_arrays.items()})
        repeats.append({"concepts": list(splits), "models": entries})
    cfg = fitted.config
    manifest = {"format": FORMAT, "sources": fitted.sources, "repeats": repeats,
                "inputs": {"single": fitted.inputs.single, "named_single": fitted.inputs.named_single,
                           "sets": fitted.inputs.sets, "probabilities": fitted.inputs.probabilities},
                "known_concept": cfg.known_concept,
                "config": {"seed": cfg.seed, "repeats": cfg.repeats, "test_fraction": cfg.test_fraction,
                           "unknown_concepts": list(cfg.unknown_concepts), "classifiers": list(cfg.classifiers),
                           "single_metrics": list(cfg.single_metrics),
                           "feature_sets": {k: list(v) for k, v in cfg.feature_sets.items()},
                           "known_unknowns": (cfg.known_unknowns if isinstance(cfg.known_unknowns, str)
                                              else list(cfg.known_unknowns)),
                           **cfg.classifier_params}}
    buf = io.BytesIO()
    np.savez(buf, manifest=np.array(json.dumps(manifest, sort_keys=True)), **arrays)
    return buf.getvalue()


def save_fitted(path: str | os.PathLike[str], fitted: FittedMeta) -> None:
    """Write ``fitted`` atomically as a pickle-free npz (see the module docstring)."""
    write_bytes(path, fitted_to_bytes(fitted))


# ------------------------------------------------------------------------------------ loading
class _Reader:
    """Typed access to the arrays of one open file, each read only when asked for and checked
    (dtype, dimensions, length) from its header first; anything unexpected is a GradmetaError naming it."""

    def __init__(self, npz: NpzArchive):
        self.npz, self.path = npz, npz.path

    def fail(self, what: str) -> GradmetaError:
        return GradmetaError(f"{self.path}: not a valid meta classifier file ({what})")

    def array(self, key: str, kind: str, ndim: int, length: int | None = None) -> np.ndarray:
        if key not in self.npz.names:
            raise self.fail(f"array {key} is missing")
        def expect(shape: tuple[int, ...], dtype: np.dtype) -> None:
            if dtype.kind != kind or len(shape) != ndim or (length is not None and shape[-1] != length):
                raise self.fail(f"array {key} is {dtype} {shape}")

        return self.npz.array(key, expect)

    def positions(self, key: str) -> np.ndarray:
        """Row positions: int64 (n,), each >= 0."""
        a = self.array(key, "i", 1)
        if len(a) and a.min() < 0:
            raise self.fail(f"array {key} holds a negative row position ({int(a.min())})")
        return a

    def split(self, prefix: str) -> Split:
        """The split ``prefix``/train, ``prefix``/test: together every row 0..n-1 of the concept exactly once
        (as :func:`split_concept` makes them), so no position is out of range, repeated or shared."""
        train, test = self.positions(f"{prefix}/train"), self.positions(f"{prefix}/test")
        every = np.sort(np.concatenate([train, test]))
        if not np.array_equal(every, np.arange(len(every))):
            repeated = int(len(every) - len(np.unique(every)))
            beyond = int((every >= len(every)).sum())
            raise self.fail(f"arrays {prefix}/train and /test are not a split of rows 0..{len(every) - 1}: "
                            f"{repeated} repeated, {beyond} out of range")
        return Split(train, test)


class _ModelArrays:
    """The arrays of one saved model (``<prefix>/<name>``), as :class:`StateArrays`."""

    def __init__(self, reader: _Reader, prefix: str):
        self.reader, self.prefix = reader, prefix

    def array(self, name: str, kind: str, ndim: int, length: int | None = None) -> np.ndarray:
        return self.reader.array(f"{self.prefix}/{name}", kind, ndim, length)

    def where(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def _rebuild(reader: _Reader, entry: dict[str, Any], prefix: str) -> ThresholdedClassifier:
    kind = entry.get("classifier")
    try:
        cls = classifier_kind(kind) if isinstance(kind, str) else None
    except ValueError:
        cls = None
    if cls is None or not isinstance(entry.get("params"), dict):
        raise reader.fail(f"unknown model kind {kind!r}")
    try:
        return cls.from_state(entry, _ModelArrays(reader, prefix))
    except ValueError as exc:
        raise reader.fail(str(exc)) from None


def _config(reader: _Reader, raw: dict[str, Any], known: Any) -> MetaConfig:
    try:
        unknowns = raw.get("unknown_concepts")
        if not isinstance(known, str) or not isinstance(unknowns, list):
            raise GradmetaError("no known concept or no list of unknown concepts")
        return MetaConfig.from_params({"meta": raw}, Concepts(known, tuple(map(str, unknowns))))
    except GradmetaError as exc:
        raise reader.fail(f"config: {exc}") from None


def _fitted_from(reader: _Reader, manifest: dict[str, Any]) -> FittedMeta:
    cfg = _config(reader, manifest["config"], manifest.get("known_concept"))
    inputs = Inputs(**manifest["inputs"])
    splits, models = [], []
    for r, rep in enumerate(manifest["repeats"]):
        splits.append({c: reader.split(f"split/{r}/{c}") for c in rep["concepts"]})
        models.append({(e["fit"], e["input"], e["classifier"]): _rebuild(reader, e, f"model/{r}/{i}")
                       for i, e in enumerate(rep["models"])})
    return FittedMeta(cfg, inputs, splits, models, dict(manifest["sources"]))


def load_fitted(path: str | os.PathLike[str]) -> FittedMeta:
    """Read what :func:`save_fitted` wrote; a missing, damaged or foreign file is a GradmetaError.
    Nothing in the file is executed (no pickle)."""
    with NpzArchive(path, "meta classifiers file", "run the meta stage first") as npz:
        reader = _Reader(npz)
        try:
            manifest = json_object(str(reader.array("manifest", "U", 0)), "manifest")
        except GradmetaError as exc:
            raise reader.fail(str(exc)) from None
        if manifest.get("format") != FORMAT:
            raise reader.fail(f"expected format {FORMAT}")
        try:
            return _fitted_from(reader, manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise reader.fail(f"manifest: {type(exc).__name__} {exc}") from None
