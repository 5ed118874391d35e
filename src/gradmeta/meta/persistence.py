"""Saving and loading fitted meta classifiers (``models/meta/meta.npz``), without pickle.

A file that a DVC remote hands around must not be able to run code when read. The file is an npz
read with ``allow_pickle=False``; it holds ``manifest`` (JSON: format, the meta config, the
inputs, the sources, and per repeat every model's key, kind and scalar state) and plain numeric
arrays: the splits' row positions and each model's fitted arrays (logistic regression: signed-log
scales, standardiser, coefficients; XGBoost: the booster in XGBoost's own UBJSON model format; a
single metric: nothing beyond its scalars). Loading accepts only the known model kinds and checks
every array's dtype and shape before use; the rebuilt models score exactly as the fitted ones.
"""

from __future__ import annotations

import io
import json
import os
import re
from typing import Any

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gradmeta.core.atomic import write_bytes
from gradmeta.core.concepts import Concepts
from gradmeta.core.errors import GradmetaError
from gradmeta.core.npzfile import NpzArchive
from gradmeta.meta.config import MetaConfig
from gradmeta.meta.estimators import (
    THRESHOLD,
    LogisticMetaClassifier,
    SignedLog,
    SingleMetricClassifier,
    ThresholdedClassifier,
    XGBoostMetaClassifier,
    logistic_regression,
)
from gradmeta.meta.fitting import FittedMeta
from gradmeta.meta.inputs import Inputs
from gradmeta.meta.scenarios import Split

FORMAT = "gradmeta.meta/4"  # /4: the C each logistic fit used and how it was chosen; XGBoost rounds
KINDS = {THRESHOLD: SingleMetricClassifier, "logistic": LogisticMetaClassifier, "xgboost": XGBoostMetaClassifier}


# ------------------------------------------------------------------------------------- saving
def _model_state(model: ThresholdedClassifier) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able scalars, arrays) that rebuild ``model`` exactly."""
    scalars: dict[str, Any] = {"params": model.get_params(), "n_features_in": int(model.n_features_in_)}
    arrays = {"classes": np.asarray(model.classes_, dtype=np.int64),
              "threshold": np.array([model.threshold_], dtype=np.float64)}
    if isinstance(model, SingleMetricClassifier):
        scalars["sign"] = float(model.sign_)
    elif isinstance(model, LogisticMetaClassifier):
        steps = model.model_.steps
        lr, scaler = steps[-1][1], steps[-2][1]
        scalars.update(converged=bool(model.converged_), n_iter=int(model.n_iter_), C_used=float(model.C_),
                       C_selection=str(model.C_selection_))
        arrays.update(scaler_mean=scaler.mean_, scaler_scale=scaler.scale_, scaler_var=scaler.var_,
                      scaler_seen=np.asarray(scaler.n_samples_seen_, dtype=np.int64).reshape(-1),
                      coef=lr.coef_, intercept=lr.intercept_, lr_n_iter=np.asarray(lr.n_iter_, dtype=np.int64))
        if model.signed_log:
            arrays["signed_log_scale"] = steps[0][1].scale_
    elif isinstance(model, XGBoostMetaClassifier):
        scalars["n_rounds"] = int(model.n_rounds_)
        arrays["booster_ubj"] = np.frombuffer(bytes(model.model_.get_booster().save_raw("ubj")), dtype=np.uint8)
    else:
        raise GradmetaError(f"cannot save a {type(model).__name__}")
    return scalars, arrays


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
            scalars, model_arrays = _model_state(model)
            entries.append({"fit": fit, "input": inp, "classifier": clf, **scalars})
            arrays.update({f"model/{r}/{i}/{k}": v for k, v in model_arrays.items()})
        repeats.append({"concepts": list(splits), "models": entries})
    cfg = fitted.config
    manifest = {"format": FORMAT, "sources": fitted.sources, "repeats": repeats,
                "inputs": {"single": fitted.inputs.single, "named_single": fitted.inputs.named_single,
                           "sets": fitted.inputs.sets},
                "known_concept": cfg.known_concept,
                "config": {"seed": cfg.seed, "repeats": cfg.repeats, "test_fraction": cfg.test_fraction,
                           "unknown_concepts": list(cfg.unknown_concepts), "classifiers": list(cfg.classifiers),
                           "single_metrics": list(cfg.single_metrics),
                           "feature_sets": {k: list(v) for k, v in cfg.feature_sets.items()},
                           "known_unknowns": (cfg.known_unknowns if isinstance(cfg.known_unknowns, str)
                                              else list(cfg.known_unknowns)),
                           "logistic": cfg.logistic, "xgboost": cfg.xgboost}}
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


def _rebuild(reader: _Reader, entry: dict[str, Any], prefix: str) -> ThresholdedClassifier:
    kind = entry.get("classifier")
    if kind not in KINDS or not isinstance(entry.get("params"), dict):
        raise reader.fail(f"unknown model kind {kind!r}")
    try:
        model = KINDS[kind](**entry["params"])
    except TypeError:
        raise reader.fail(f"bad parameters for {kind}: {entry['params']}") from None
    n = int(entry["n_features_in"])
    model.n_features_in_ = n
    model.classes_ = reader.array(f"{prefix}/classes", "i", 1, 2)
    model.threshold_ = float(reader.array(f"{prefix}/threshold", "f", 1, 1)[0])
    if kind == THRESHOLD:
        model.sign_ = float(entry["sign"])
    elif kind == "logistic":
        _rebuild_logistic(reader, model, entry, prefix, n)
    else:
        _rebuild_xgboost(reader, model, entry, prefix)
    return model


def _rebuild_logistic(reader: _Reader, model: LogisticMetaClassifier, entry: dict[str, Any], prefix: str,
                      n: int) -> None:
    steps = []
    if model.signed_log:
        signed = SignedLog()
        signed.scale_ = reader.array(f"{prefix}/signed_log_scale", "f", 1, n)
        steps.append(signed)
    scaler = StandardScaler()
    scaler.mean_ = reader.array(f"{prefix}/scaler_mean", "f", 1, n)
    scaler.scale_ = reader.array(f"{prefix}/scaler_scale", "f", 1, n)
    scaler.var_ = reader.array(f"{prefix}/scaler_var", "f", 1, n)
    scaler.n_samples_seen_ = int(reader.array(f"{prefix}/scaler_seen", "i", 1)[0])
    scaler.n_features_in_ = n
    model.C_, model.C_selection_ = float(entry["C_used"]), str(entry["C_selection"])
    lr = logistic_regression(model.C_, model.max_iter)
    lr.coef_ = reader.array(f"{prefix}/coef", "f", 2, n)
    lr.intercept_ = reader.array(f"{prefix}/intercept", "f", 1, 1)
    lr.n_iter_ = reader.array(f"{prefix}/lr_n_iter", "i", 1)
    lr.classes_ = np.array([0, 1])
    lr.n_features_in_ = n
    model.model_ = make_pipeline(*steps, scaler, lr)
    model.converged_, model.n_iter_ = bool(entry["converged"]), int(entry["n_iter"])


def _rebuild_xgboost(reader: _Reader, model: XGBoostMetaClassifier, entry: dict[str, Any], prefix: str) -> None:
    from xgboost import XGBClassifier
    from xgboost.core import XGBoostError

    booster = XGBClassifier(n_jobs=model.n_jobs)
    key = f"{prefix}/booster_ubj"
    try:
        booster.load_model(bytearray(reader.array(key, "u", 1).tobytes()))
        booster.get_booster().num_boosted_rounds()
    except (XGBoostError, ValueError, TypeError, KeyError) as exc:
        detail = re.sub(r"^\[[\d:]+\] \S+: ", "", (str(exc).splitlines() or [type(exc).__name__])[0])
        raise reader.fail(f"array {key} is not an XGBoost model: {detail}") from None
    model.model_ = booster
    model.n_rounds_ = int(entry["n_rounds"])
    if booster.get_booster().num_boosted_rounds() != model.n_rounds_:
        raise reader.fail(f"array {key} holds {booster.get_booster().num_boosted_rounds()} rounds, the manifest "
                          f"{model.n_rounds_}")
    model.converged_ = True


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
            manifest = json.loads(str(reader.array("manifest", "U", 0)))
        except json.JSONDecodeError:
            raise reader.fail("manifest is not JSON") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise reader.fail(f"expected format {FORMAT}")
        try:
            return _fitted_from(reader, manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise reader.fail(f"manifest: {type(exc).__name__} {exc}") from None
