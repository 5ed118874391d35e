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

All of them come from one pass over the model (:mod:`.model_pass`). Every metric column is float64
here (the pipeline stores float32).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors.base import DETECTOR_CHUNK_SIZE, Detector
from gradmeta.uncertainty.gradients import DEFAULT_CHUNK_SIZE, PAPER_STATISTICS
from gradmeta.uncertainty.model_calls.batches import gather_batches, is_batches
from gradmeta.uncertainty.model_calls.model_state import keeps_model_state
from gradmeta.uncertainty.model_pass import metric_columns


@keeps_model_state
def metric_table(model: nn.Module, images: torch.Tensor, *, labels: torch.Tensor | str = "predicted",
                 statistics: Sequence[str] = PAPER_STATISTICS, targets: Sequence[str] = (),
                 detectors: Mapping[str, Detector] | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 detector_chunk_size: int = DETECTOR_CHUNK_SIZE, progress: bool = False, desc: str = "metrics",
                 factors: bool = False, probabilities: bool = False) -> pd.DataFrame:
    """The per-image metric table of ``model`` on ``images`` (N, ...): one row per image, the columns
    of the module docstring.

    ``images``: a float tensor of any shape the model takes (moved chunk by chunk to the model's
    device), or a DataLoader / any iterable of batches (tensors or ``(images, labels, ...)`` tuples: their
    images, gathered in order on the CPU). ``labels``: the class each image's gradients are taken at, ``"predicted"`` (the
    paper's choice) or an integer tensor (N,). ``statistics``: of ``gradmeta.ALL_STATISTICS``.
    ``targets``: further gradient targets (``"kl_uniform"``, ``"bce_ones"``). ``detectors``: column name ->
    detector, fitted where it needs it (e.g. ``{"mahalanobis": Mahalanobis().fit(model, train_x, train_y),
    "odin": ODIN()}``); they read the penultimate features and logits of the one pass, and those that
    run the model again (ODIN, MC dropout) do so in batches of ``detector_chunk_size``. ``chunk_size``:
    images per batched forward/backward of the gradient engine. ``factors``: add the ``factor/...``
    columns (the per-layer factors of the cross-entropy's per-sample gradients); ``probabilities``: add
    the ``prob/<c>`` columns. ``progress``: a bar named ``desc`` on a terminal.
    The model is run in eval mode on copies of the images; every module's mode, the buffers and the
    caller's random streams are as before afterwards. Memory is flat in N but for the table, the
    penultimate features and the images; the model's device holds one chunk of images at a time.
    """
    if isinstance(targets, str):
        raise GradmetaError(f"targets must be a list of target names, got the string {targets!r}")
    if is_batches(images):  # a DataLoader or any iterable of batches: their images, in order
        images, _ = gather_batches(images, "metric_table")
    # the images stay where they are; a detector that runs the model moves one chunk at a time
    pred, columns = metric_columns(model, images, statistics, tuple(targets), chunk_size, labels, detectors=detectors,
                                   detector_chunk_size=detector_chunk_size, desc=desc, progress=progress,
                                   factors=factors, probabilities=probabilities)
    return pd.DataFrame({"pred": pred, **columns})
