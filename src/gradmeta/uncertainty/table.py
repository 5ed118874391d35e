"""The per-image metric table of any classifier on any float tensor: what the extract stage computes,
for a user's own model and data.

Columns, in this order (the names of the pipeline's features, :mod:`gradmeta.features`):

- ``pred``: the model's predicted class (argmax of its logits);
- ``softmax/<metric>`` (:mod:`.softmax`), ``grad/<parameter>/<statistic>`` and ``grad/all/<statistic>``
  (the exact per-sample gradient statistics of the cross-entropy, :mod:`.gradients`) and
  ``baseline/gradnorm``;
- ``factor/<layer>/<factor>`` when ``factors`` is set: for every layer with a rule, the L1 and L2 norms
  of its input (``input_l1``, ``input_l2``) and of the cross-entropy's gradient with respect to its
  output (``outgrad_l1``, ``outgrad_l2``), the factors of its per-sample gradient
  (:func:`gradmeta.uncertainty.gradients.engine.layer_factors`);
- ``prob/<c>`` when ``probabilities`` is set: the softmax probability of every class c (REL-U's input);
- ``grad_<target>/...`` for each further gradient target (``kl_uniform``, ``bce_ones``);
- ``detector/<name>`` for each detector given, in gradmeta's sign (higher = in-distribution).

Every metric column is float64 here (the pipeline stores float32).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from gradmeta.core.batches import gather_batches, is_batches
from gradmeta.core.errors import GradmetaError
from gradmeta.core.model_state import keeps_model_state
from gradmeta.features import GRADNORM_COLUMN
from gradmeta.uncertainty.detectors.base import Detector, SharedFeatures
from gradmeta.uncertainty.gradients import DEFAULT_CHUNK_SIZE, PAPER_STATISTICS, iterate_targets
from gradmeta.uncertainty.softmax import softmax_metrics

DETECTOR_PREFIX = "detector/"
FACTOR_PREFIX = "factor/"
PROB_PREFIX = "prob/"


def engine_columns(model: nn.Module, images: torch.Tensor, statistics: Sequence[str], targets: Sequence[str] = (),
                   chunk_size: int = DEFAULT_CHUNK_SIZE, labels: torch.Tensor | str = "predicted",
                   desc: str = "metrics", progress: bool = False, factors: bool = False,
                   probabilities: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predictions (n,) int64 and float64 metric columns (n,) of one engine pass over ``images``
    (one forward per chunk, one backward per target): the softmax metrics, the gradient statistics
    and GradNorm, the cross-entropy's gradient factors ``factor/...`` if ``factors``, the class
    probabilities ``prob/<c>`` if ``probabilities``, then for each
    further target of ``targets`` its gradient statistics as the column group ``grad_<target>/``."""
    n = len(images)
    columns: dict[str, np.ndarray] = {}  # allocated once, filled chunk by chunk
    pred = np.empty(n, dtype=np.int64)
    start = 0
    with tqdm(total=n, desc=desc, unit="img", disable=None if progress else True, leave=False) as bar:
        for by_target in iterate_targets(model, images, ("cross_entropy", *targets), statistics, labels,
                                         chunk_size, with_gradnorm=True, on_chunk=bar.update, with_factors=factors):
            result, grads = by_target["cross_entropy"]
            chunk = {**softmax_metrics(result.logits.cpu()), **grads, GRADNORM_COLUMN: result.gradnorm.cpu(),
                     **{FACTOR_PREFIX + k: v.cpu() for k, v in result.factors.items()}}
            if probabilities:
                p = torch.softmax(result.logits.double(), dim=1).cpu()
                chunk.update({f"{PROB_PREFIX}{c}": p[:, c] for c in range(p.shape[1])})
            for target in targets:
                chunk.update({f"grad_{target}/{k.removeprefix('grad/')}": v for k, v in by_target[target][1].items()})
            if not columns:
                columns = {k: np.empty(n, dtype=np.float64) for k in chunk}
            m = len(result.labels)
            pred[start: start + m] = result.logits.argmax(1).cpu().numpy()
            for k, v in chunk.items():
                columns[k][start: start + m] = v.double().numpy()
            start += m
    return pred, columns


def table_detector_columns(model: nn.Module, images: torch.Tensor, detectors: Mapping[str, Detector],
                           chunk_size: int = 256, offset: int = 0,
                           seconds: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``detector/<key>`` -> float64 scores (n,) of each detector on ``images`` (a detector of several
    outputs, as MC dropout, gives its own column names); the penultimate features are computed once,
    for all detectors that use them, in batches of ``chunk_size``. ``offset`` (a multiple of
    ``chunk_size``) is the position of ``images[0]`` in a whole set that is scored in slices: a slice
    starting at a batch boundary gets the same scores, bit for bit, as the whole set (MC dropout's
    masks are seeded per batch). ``seconds[key]``, when given, receives each detector's wall time
    (the first that needs the penultimate features includes them)."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise GradmetaError(f"detector_chunk_size must be a positive integer, got {chunk_size!r}")
    if offset % chunk_size:
        raise GradmetaError(f"offset {offset} is not a multiple of the detectors' chunk size {chunk_size}")
    for key, detector in detectors.items():
        if not isinstance(detector, Detector):
            raise GradmetaError(f"detectors[{key!r}] must be a detector (gradmeta.Mahalanobis, KNN, ViM, ReAct, ODIN, "
                                f"MCDropout or a registered one), got {type(detector).__name__}")
        detector._check_fitted()
    shared = SharedFeatures(model, images, chunk_size)
    out: dict[str, np.ndarray] = {}
    for key, detector in detectors.items():
        start = time.perf_counter()
        columns = detector.columns(model, images, shared, chunk_size, offset)
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


@keeps_model_state
def metric_table(model: nn.Module, images: torch.Tensor, *, labels: torch.Tensor | str = "predicted",
                 statistics: Sequence[str] = PAPER_STATISTICS, targets: Sequence[str] = (),
                 detectors: Mapping[str, Detector] | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 detector_chunk_size: int = 256, offset: int = 0, seconds: dict[str, float] | None = None,
                 progress: bool = False, desc: str = "metrics", factors: bool = False,
                 probabilities: bool = False) -> pd.DataFrame:
    """The per-image metric table of ``model`` on ``images`` (N, ...): one row per image, the columns
    of the module docstring.

    ``images``: a float tensor of any shape the model takes (moved chunk by chunk to the model's
    device), or a DataLoader / any iterable of batches (tensors or ``(images, labels, ...)`` tuples: their
    images, gathered in order on the CPU). ``labels``: the class each image's gradients are taken at, ``"predicted"`` (the
    paper's choice) or an integer tensor (N,). ``statistics``: of ``gradmeta.ALL_STATISTICS``.
    ``targets``: further gradient targets (``"kl_uniform"``, ``"bce_ones"``). ``detectors``: column name ->
    detector, fitted where it needs it (e.g. ``{"mahalanobis": Mahalanobis().fit(model, train_x, train_y),
    "odin": ODIN()}``), scored in batches of ``detector_chunk_size``; ``offset``: see
    :func:`table_detector_columns`. ``chunk_size``: images per batched forward/backward of the
    gradient engine. ``factors``: add the ``factor/...`` columns (the per-layer factors of the
    cross-entropy's per-sample gradients); ``probabilities``: add the ``prob/<c>`` columns.
    ``seconds``, when given, receives the wall time of the gradient pass (keyed
    ``cross_entropy+<target>...``) and of each detector.
    The model is run in eval mode on copies of the images; every module's mode, the buffers and the
    caller's random streams are as before afterwards. Memory is flat in N but for the table and the
    images; the model's device holds one chunk of images at a time (the gradient pass and every detector).
    """
    if isinstance(targets, str):
        raise GradmetaError(f"targets must be a list of target names, got the string {targets!r}")
    if is_batches(images):  # a DataLoader or any iterable of batches: their images, in order
        images, _ = gather_batches(images, "metric_table")
    start = time.perf_counter()
    pred, columns = engine_columns(model, images, statistics, tuple(targets), chunk_size, labels, desc=desc,
                                   progress=progress, factors=factors, probabilities=probabilities)
    if seconds is not None:
        seconds["+".join(("cross_entropy", *targets))] = time.perf_counter() - start
    if detectors:  # the images stay where they are; each detector moves one chunk at a time to the model's device
        columns.update(table_detector_columns(model, images, detectors, detector_chunk_size, offset, seconds))
    for name, values in columns.items():  # finite inputs can still overflow inside the model
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise GradmetaError(f"column {name} is not finite for {len(bad)} image(s), the first image {int(bad[0])} "
                                "(an overflow inside the model?)")
    return pd.DataFrame({"pred": pred, **columns})
