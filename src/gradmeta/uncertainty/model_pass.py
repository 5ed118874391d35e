"""One pass over the model for a set of images: every column family of the metric table reads it.

Per chunk, the gradient engine runs one forward and one backward per gradient target
(:mod:`.gradients.engine`); from that one result come the predictions, the softmax metrics, the
gradient statistics of every target, the gradient factors, the class probabilities, GradNorm and the
penultimate features with the logits, which the detectors read (:func:`score_detectors`). Nothing is
computed twice: no detector runs a second forward for the penultimate features (only the detectors
whose score is itself another pass, ODIN's perturbed input and MC dropout's stochastic passes, run
the model again).

:func:`metric_columns` is the whole sequence, for the library's face
(:func:`gradmeta.uncertainty.table.metric_table`) and the extract stage alike (which passes a shard's
``offset`` and collects ``seconds``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from gradmeta.core.errors import GradmetaError
from gradmeta.features import GRADNORM_COLUMN
from gradmeta.uncertainty.detectors.base import DETECTOR_CHUNK_SIZE, Detector, ScoringBatch
from gradmeta.uncertainty.detectors.gradnorm import gradnorm_scores
from gradmeta.uncertainty.gradients import iterate_targets
from gradmeta.uncertainty.softmax import softmax_metrics

DETECTOR_PREFIX = "detector/"
FACTOR_PREFIX = "factor/"
PROB_PREFIX = "prob/"


@dataclass
class ModelPass:
    """What one pass over N images gives: ``pred`` (N,) int64, the metric ``columns`` float64 (N,) each,
    and the penultimate features (N, D) and logits (N, C) float64 on the CPU, which every detector reads
    (:class:`gradmeta.uncertainty.detectors.base.ScoringBatch`; None for no images)."""

    pred: np.ndarray
    columns: dict[str, np.ndarray]
    features: tuple[torch.Tensor, torch.Tensor] | None


def model_pass(model: nn.Module, images: torch.Tensor, statistics: Sequence[str], targets: Sequence[str],
               chunk_size: int, labels: torch.Tensor | str = "predicted", *, desc: str = "metrics",
               progress: bool = False, factors: bool = False, probabilities: bool = False) -> ModelPass:
    """The one engine pass over ``images`` (one forward per chunk, one backward per target): the softmax
    metrics, the gradient statistics and GradNorm, the cross-entropy's gradient factors ``factor/...`` if
    ``factors``, the class probabilities ``prob/<c>`` if ``probabilities``, then for each further target
    of ``targets`` its gradient statistics as the column group ``grad_<target>/``; and the penultimate
    features and logits the detectors read. Arguments as :func:`gradmeta.uncertainty.table.metric_table`."""
    n = len(images)
    columns: dict[str, np.ndarray] = {}  # allocated once, filled chunk by chunk
    pred = np.empty(n, dtype=np.int64)
    z = logits = None
    start = 0
    with tqdm(total=n, desc=desc, unit="img", disable=None if progress else True, leave=False) as bar:
        for by_target in iterate_targets(model, images, ("cross_entropy", *targets), statistics, labels,
                                         chunk_size, on_chunk=bar.update, with_factors=factors):
            result, grads = by_target["cross_entropy"]
            if result.features is None:
                raise GradmetaError("GradNorm and the detectors need a model whose logits come straight out of an "
                                    "nn.Linear layer")
            chunk = {**softmax_metrics(result.logits.cpu()), **grads,
                     GRADNORM_COLUMN: gradnorm_scores(result.logits, result.features).cpu(),
                     **{FACTOR_PREFIX + k: v.cpu() for k, v in result.factors.items()}}
            if probabilities:
                p = torch.softmax(result.logits.double(), dim=1).cpu()
                chunk.update({f"{PROB_PREFIX}{c}": p[:, c] for c in range(p.shape[1])})
            for target in targets:
                chunk.update({f"grad_{target}/{k.removeprefix('grad/')}": v for k, v in by_target[target][1].items()})
            if not columns:
                columns = {k: np.empty(n, dtype=np.float64) for k in chunk}
                z = torch.empty(n, result.features.shape[1], dtype=torch.float64)
                logits = torch.empty(n, result.logits.shape[1], dtype=torch.float64)
            m = len(result.labels)
            pred[start: start + m] = result.logits.argmax(1).cpu().numpy()
            z[start: start + m] = result.features.cpu()
            logits[start: start + m] = result.logits.cpu()
            for k, v in chunk.items():
                columns[k][start: start + m] = v.double().numpy()
            start += m
    # no images, no features: a detector asking for them is told so (its ScoringBatch computes on first use)
    return ModelPass(pred, columns, None if z is None else (z, logits))


def metric_columns(model: nn.Module, images: torch.Tensor, statistics: Sequence[str], targets: Sequence[str],
                   chunk_size: int, labels: torch.Tensor | str = "predicted", *,
                   detectors: Mapping[str, Detector] | None = None, detector_chunk_size: int = DETECTOR_CHUNK_SIZE,
                   offset: int = 0, seconds: dict[str, float] | None = None, desc: str = "metrics", progress: bool = False,
                   factors: bool = False, probabilities: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predictions (N,) int64 and the metric columns float64 (N,) of ``images``: the detectors checked first
    (before the long part), the one pass (:func:`model_pass`), every detector's scores on it
    (:func:`score_detectors`, ``offset`` as there), every column checked finite. ``seconds``, when given,
    receives the wall time of the pass (keyed ``cross_entropy+<target>...``) and of each detector."""
    detectors = detectors or {}
    checked_detectors(detectors, detector_chunk_size)
    start = time.perf_counter()
    result = model_pass(model, images, statistics, targets, chunk_size, labels, desc=desc, progress=progress,
                        factors=factors, probabilities=probabilities)
    if seconds is not None:
        seconds["+".join(("cross_entropy", *targets))] = time.perf_counter() - start
    if detectors:
        result.columns.update(score_detectors(model, images, detectors, result.features, detector_chunk_size, offset,
                                              seconds))
    checked_finite(result.columns)
    return result.pred, result.columns


def checked_detectors(detectors: Mapping[str, Detector], chunk_size: int) -> None:
    """Every value of ``detectors`` is a fitted detector and ``chunk_size`` a positive integer."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise GradmetaError(f"detector_chunk_size must be a positive integer, got {chunk_size!r}")
    for key, detector in detectors.items():
        if not isinstance(detector, Detector):
            raise GradmetaError(f"detectors[{key!r}] must be a detector (gradmeta.Mahalanobis, KNN, ViM, ReAct, ODIN, "
                                f"MCDropout or a registered one), got {type(detector).__name__}")
        detector._check_fitted()


def score_detectors(model: nn.Module, images: torch.Tensor, detectors: Mapping[str, Detector],
                    features: tuple[torch.Tensor, torch.Tensor] | None,
                    chunk_size: int = DETECTOR_CHUNK_SIZE, offset: int = 0,
                    seconds: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``detector/<key>`` -> float64 scores (n,) of each detector on ``images`` (a detector of several
    outputs, as MC dropout, gives its own column names), every one reading the same penultimate
    ``features`` and logits (of :func:`model_pass`; None: computed once, on first use), in one
    :class:`ScoringBatch`; the detectors that run the model again
    (ODIN, MC dropout) do so in batches of ``chunk_size``. ``offset`` (a multiple of ``chunk_size``) is
    the position of ``images[0]`` in a whole set that is scored in slices (the extract stage's shards):
    a slice starting at a batch boundary gets the same scores, bit for bit, as the whole set (MC
    dropout's masks are seeded per batch). ``seconds[key]``, when given, receives each detector's wall time.
    The detectors are the ones :func:`checked_detectors` passed."""
    if offset % chunk_size:
        raise GradmetaError(f"offset {offset} is not a multiple of the detectors' chunk size {chunk_size}")
    batch = ScoringBatch(model, images, chunk_size, offset // chunk_size, features)
    out: dict[str, np.ndarray] = {}
    for key, detector in detectors.items():
        start = time.perf_counter()
        columns = detector.columns(batch)
        if len(columns) == 1:
            columns = {key: next(iter(columns.values()))}
        clash = [k for k in columns if DETECTOR_PREFIX + k in out]
        if clash:
            raise GradmetaError(f"detectors[{key!r}] gives the column {DETECTOR_PREFIX + clash[0]}, which another "
                                "detector already gave: rename one of the keys")
        out.update({DETECTOR_PREFIX + k: v.double().cpu().numpy() for k, v in columns.items()})
        if seconds is not None:
            seconds[key] = time.perf_counter() - start
    return out


def checked_finite(columns: Mapping[str, np.ndarray]) -> None:
    """Every column finite (finite inputs can still overflow inside the model), else the first bad image named."""
    for name, values in columns.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise GradmetaError(f"column {name} is not finite for {len(bad)} image(s), the first image {int(bad[0])} "
                                "(an overflow inside the model?)")
