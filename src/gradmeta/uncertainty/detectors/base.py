"""What every detector shares: the protocol, the score convention and the penultimate features.

Convention (pytorch-ood's API shape, gradmeta's sign): ``predict_features`` / ``predict`` return
*outlier* scores like pytorch-ood (higher = more likely out-of-distribution); ``score_features`` /
``score`` return gradmeta's scores, their negation (higher = more likely in-distribution and
correct). Each detector's docstring says how its paper's sign maps to these.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.model_calls.batches import gather_batches, is_batches
from gradmeta.uncertainty.model_calls.finite import first_non_finite_row
from gradmeta.uncertainty.model_calls.hooks import forward_with_hooks
from gradmeta.uncertainty.model_calls.model_io import check_input_dtype, checked_logits
from gradmeta.uncertainty.model_calls.model_state import keeps_model_state, untouched


def _checks_images(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method(self, model, images, ...)`` with ``images`` refused where it holds a NaN or an infinity:
    a score of such an image would be NaN without a word."""
    @functools.wraps(method)
    def wrapper(self: Detector, model: nn.Module, images: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if is_batches(images):  # a DataLoader or any iterable of batches: gathered, its labels to fit
            images, labels = gather_batches(images, f"{type(self).__name__}.{method.__name__}")
            if method.__name__ == "fit" and labels is not None and not args and kwargs.get("labels") is None:
                kwargs["labels"] = labels
        first = first_non_finite_row(images) if isinstance(images, torch.Tensor) else None
        if first is not None:
            raise GradmetaError(f"{type(self).__name__}: image {first} has non-finite values (NaN or inf)")
        if isinstance(images, torch.Tensor) and isinstance(model, nn.Module):
            check_input_dtype(model, images)
        return method(self, model, images, *args, **kwargs)
    return wrapper


DETECTOR_CHUNK_SIZE = 256  # images per batch where a detector runs the model (its default, the pipeline's too)


@dataclass(frozen=True)
class ModelSizes:
    """What a detector's params are checked against before any fitting: the model's penultimate
    ``features`` (D, the logits layer's inputs), its ``classes`` (C), and the ``train_rows`` the fitted
    detectors learn from."""

    features: int
    classes: int
    train_rows: int


class Detector(ABC):
    """The protocol every detector follows (pytorch-ood's and OpenOOD's shape, gradmeta's sign).

    - ``fit(model, images, labels)`` -> self: learn what it needs from training tensors (nothing,
      for a detector that scores straight from the model: ODIN, MC dropout);
    - ``score(model, images)`` -> float64 (N,): higher = more likely in-distribution and correct;
      ``predict(model, images)`` = ``detector(model, images)`` = ``-score``, pytorch-ood's outlier score;
      ``images`` a tensor, or a DataLoader / any iterable of batches (``fit`` takes the batches' labels);
    - ``columns(batch)`` -> {column: scores (N,)}: its ``detector/<column>`` entries of the metric table
      (``{name: score}`` unless it has several), from a :class:`ScoringBatch` (the model, the images, the
      penultimate features and logits of the table's one pass);
    - ``state()`` / ``from_state(state, **init)``: its fitted state as float64 tensors, no pickle;
    - ``from_params(params, head)``: built from its ``detectors.<name>`` params group for a model whose logits
      layer is ``head`` (found once per run, :func:`logits_layer`);
    - ``size_problems(params, sizes)``: what its params group cannot do on a model and train split of
      ``sizes`` (or, with ``sizes`` None, on any), declared with the detector; the pipeline refuses it
      before any work, naming the parameter.

    A detector class is registered with :func:`gradmeta.uncertainty.detectors.registry.register_detector`.
    """

    detector_name: str = ""
    fitted: bool = True  # a detector with nothing to fit is always ready

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every ``fit`` and ``score`` a detector class defines refuses images with a NaN or an infinity
        (naming the first) and leaves the caller's model and random streams as it found them
        (:func:`gradmeta.uncertainty.model_calls.model_state.keeps_model_state`)."""
        super().__init_subclass__(**kwargs)
        for name in ("fit", "score"):
            if name in cls.__dict__ and not getattr(cls.__dict__[name], "__wrapped__", None):
                setattr(cls, name, keeps_model_state(_checks_images(cls.__dict__[name])))

    @classmethod
    def from_params(cls, params: dict[str, Any], head: nn.Linear) -> Detector:
        """The unfitted detector from its params group, for the model whose logits layer is ``head``."""
        return cls(**params)

    @classmethod
    def size_problems(cls, params: Mapping[str, Any], sizes: ModelSizes | None) -> dict[str, str]:
        """key of its params group -> what is wrong with the value (``must be ..., got ...``) on a model and
        train split of ``sizes``; ``sizes`` None: what is wrong whatever the sizes. None by default."""
        return {}

    def fit(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
            chunk_size: int = DETECTOR_CHUNK_SIZE) -> Detector:
        """Nothing to learn by default."""
        return self

    @abstractmethod
    def score(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        """gradmeta's scores float64 (N,) of ``images``: higher = more likely in-distribution."""

    def predict(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        """Outlier scores float64 (N,) of ``images`` (pytorch-ood's sign: higher = more likely
        out-of-distribution): ``-score``. Feed ``score``, not this, to gradmeta's measures, whose positive
        class is in-distribution / correct."""
        return -self.score(model, images, chunk_size)

    def __call__(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        """``detector(model, images)`` = :meth:`predict`, as pytorch-ood's detectors are called (outlier scores,
        higher = more likely out-of-distribution)."""
        return self.predict(model, images, chunk_size)

    def columns(self, batch: ScoringBatch) -> dict[str, torch.Tensor]:
        """Its metric-table columns (without the ``detector/`` prefix) for ``batch.images``: its
        :meth:`score` by default."""
        return {self.detector_name: self.score(batch.model, batch.images, batch.chunk_size)}

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted state, to save (float64 tensors); nothing for a detector with nothing to fit."""
        return {}

    def restore(self, state: dict[str, torch.Tensor]) -> Detector:
        """The detector fitted with a saved :meth:`state`."""
        return self

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], **init: Any) -> Detector:
        """A detector built with ``init`` (its constructor's arguments) and fitted with ``state``; a state
        tensor with a NaN or an infinity is refused, naming it (a fitted state never holds one)."""
        for key, value in state.items():
            if not isinstance(value, torch.Tensor) or (value.is_floating_point() and not bool(torch.isfinite(value).all())):
                raise GradmetaError(f"{cls.__name__}: state {key!r} is not a tensor of finite values")
        try:
            return cls(**init).restore(state)
        except KeyError as exc:
            raise GradmetaError(f"{cls.__name__}: the state lacks {exc}; it holds {sorted(state)}") from None

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise GradmetaError(f"{type(self).__name__} is not fitted: call fit or fit_features first")


class ScoringBatch:
    """What a detector's metric-table columns are computed from (:meth:`Detector.columns`): the ``model``
    and the ``images`` (n, ...); their penultimate features (n, D) and logits (n, C), float64 on the CPU
    (:meth:`features`: given by the metric table's one pass over the model, or computed once, on first use,
    by a forward of their own where a detector is scored alone); ``chunk_size``, the batch of a detector
    that runs the model again (ODIN, MC dropout); and ``first_batch``, the number of ``images[0]``'s batch
    in a whole set scored in slices (the extract stage's shards): a detector seeded per batch gives a slice
    the whole set's values."""

    def __init__(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE, first_batch: int = 0,
                 features: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.model, self.images, self.chunk_size, self.first_batch = model, images, chunk_size, first_batch
        self._features = features

    def features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(z (n, D), logits (n, C)), float64 on the CPU."""
        if self._features is None:
            self._features = features_of(self.model, self.images, self.chunk_size)
        return self._features


class FeatureDetector(Detector):
    """A detector on penultimate features z (n, D) (and logits where it needs them).

    On features: ``fit_features(z, y)``, ``score_features(z, logits)``, ``predict_features``. On a
    model and its input tensors (the penultimate features are the input of the model's logits layer,
    computed in eval mode, without gradients): ``fit(model, images, labels)``, ``score(model, images)``,
    ``predict(model, images)``.
    """

    fitted: bool = False

    @abstractmethod
    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> FeatureDetector:
        """Fit on training features z (n, D) and, for the detectors that use them, their classes y (n,)."""

    def fit(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
            chunk_size: int = DETECTOR_CHUNK_SIZE) -> FeatureDetector:
        """Fit on the penultimate features of training ``images`` (N, ...) and their ``labels`` (N,)."""
        z, _ = features_of(model, checked_images(images), chunk_size)
        return self.fit_features(z, None if labels is None else torch.as_tensor(labels))

    def score(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        """gradmeta's scores float64 (N,) of ``images``: higher = more likely in-distribution."""
        self._check_fitted()
        return self.score_batch(ScoringBatch(model, checked_images(images), chunk_size))

    def feature_width(self) -> int | None:
        """D of the features its fitted state expects (None: it takes any, or it reads D from the model)."""
        return None

    def check_width(self, z: torch.Tensor) -> None:
        """Refuse features z (n, D') whose D' is not the width its fitted state was made for."""
        width = self.feature_width() if self.fitted else None
        if width is not None and (z.dim() != 2 or z.shape[1] != width):
            raise GradmetaError(f"{type(self).__name__}: features of shape {tuple(z.shape)}, but its fitted state is for "
                                f"{width} features (fitted on another model, or another layer)")

    def score_batch(self, batch: ScoringBatch) -> torch.Tensor:
        """``score_features`` of the batch's features, ``batch.chunk_size`` rows at a time."""
        z, logits = batch.features()
        self.check_width(z)
        step = batch.chunk_size
        return torch.cat([self.score_features(z[i: i + step], logits[i: i + step]) for i in range(0, len(z), step)])

    def columns(self, batch: ScoringBatch) -> dict[str, torch.Tensor]:
        self._check_fitted()
        return {self.detector_name: self.score_batch(batch)}

    @abstractmethod
    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Outlier scores float64 (n,), higher = more likely out-of-distribution (pytorch-ood's sign)."""

    def score_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """gradmeta's convention: higher = more likely in-distribution; float64 (n,)."""
        return -self.predict_features(z, logits)


class StatelessFeatureDetector(FeatureDetector):
    """A feature detector with nothing to fit: its score is a function of each image's penultimate
    features and logits alone (the feature norm, ExGrad)."""

    fitted: bool = True

    def fit_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> StatelessFeatureDetector:
        """Nothing to learn."""
        return self


def bank_problems(params: Mapping[str, Any], sizes: ModelSizes | None) -> dict[str, str]:
    """The nearest-neighbour detectors' one size rule, for their params (``k``, ``bank_size``): the k-th
    neighbour must be in the bank, which holds ``bank_size`` of the train rows (all where null)."""
    k, bank_size = params["k"], params["bank_size"]
    if sizes is None:
        return {"bank_size": f"must be at least k ({k}), got {bank_size}"} if bank_size is not None and bank_size < k \
            else {}
    bank = sizes.train_rows if bank_size is None else min(bank_size, sizes.train_rows)
    if k <= bank:
        return {}
    size = "null" if bank_size is None else bank_size
    return {"k": f"must be at most the {bank} train images in its bank (bank_size: {size}, {sizes.train_rows} train "
                 f"images), got {k}"}


def check_bank(owner: str, rows: int, k: int) -> None:
    """A bank in hand (``rows`` of them, fitted or restored) must hold the k-th neighbour."""
    if rows < k:
        raise GradmetaError(f"{owner}: the bank has {rows} rows, fewer than k = {k}")


def seeded_rows(z: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """A seeded sample of ``size`` rows of z (n, ...), in their order (all of them where ``size`` is None
    or at least n): the banks of the nearest-neighbour detectors."""
    if size is None or size >= len(z):
        return z
    rng = np.random.Generator(np.random.PCG64(seed))
    return z[torch.from_numpy(np.sort(rng.choice(len(z), size=size, replace=False)))]


def checked_images(images: torch.Tensor) -> torch.Tensor:
    """``images`` itself, refused unless a floating-point tensor. They stay where they are (the CPU, as a
    rule): each chunk goes to the model's device on its own (:func:`chunk_on_device`)."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise GradmetaError(f"images must be a floating-point torch.Tensor (N, ...), got "
                            f"{getattr(images, 'dtype', type(images).__name__)}")
    return images


def chunk_on_device(model: nn.Module, chunk: torch.Tensor) -> torch.Tensor:
    """A copy of ``chunk`` on the device of ``model``'s parameters: what the model sees of the caller's
    images (never their storage), one chunk at a time, so the device holds one chunk, whatever N is."""
    param = next(model.parameters(), None)
    device = chunk.device if param is None else param.device
    return chunk.to(device, copy=True)


@keeps_model_state
def logits_layer(model: nn.Module, probe: torch.Tensor) -> nn.Linear:
    """The ``nn.Linear`` whose output is the model's logits (found on ``probe``), for detectors that
    need the penultimate features (its input) or the head's weights."""
    outputs: dict[int, torch.Tensor] = {}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    logits = checked_logits(forward_with_hooks(model, linears, lambda mod, i, o: outputs.__setitem__(id(mod), o),
                                               chunk_on_device(model, probe)), len(probe))
    for m in linears:
        if outputs.get(id(m)) is logits:
            return m
    raise GradmetaError("the detector needs a model whose logits come straight out of an nn.Linear layer")


def penultimate(model: nn.Module, x: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE,
                head: nn.Linear | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(features (m, D), logits (m, C)) of consecutive chunks of ``x`` in eval mode, no gradients;
    features are the input of the logits layer ``head`` (found on ``x[:1]`` when not given). The model
    sees copies of ``x``'s chunks; its modes and the random streams are restored afterwards
    (:func:`gradmeta.uncertainty.model_calls.model_state.untouched`)."""
    with untouched(model):
        head = head or logits_layer(model, x[:1])  # which probes on a copy
        captured: list[torch.Tensor] = []
        handle = head.register_forward_hook(lambda mod, i, o: captured.append(i[0].detach()))
        try:
            with torch.no_grad():
                for start in range(0, len(x), chunk_size):
                    captured.clear()
                    logits = model(chunk_on_device(model, x[start: start + chunk_size]))  # a copy, one chunk at a time
                    yield captured[0].flatten(1).cpu(), logits.cpu()
        finally:
            handle.remove()


def features_of(model: nn.Module, images: torch.Tensor, chunk_size: int,
                head: nn.Linear | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features (n, D) and logits (n, C), float64, of ``images`` in eval mode (filled
    batch by batch into buffers of the final size: no whole-size float32 copies on the way); ``head``:
    the logits layer, when already found."""
    if len(images) == 0:
        raise GradmetaError("no images to compute penultimate features of")
    z = logits = None
    for start, (zc, lc) in zip(range(0, len(images), chunk_size), penultimate(model, images, chunk_size, head), strict=True):
        if z is None:
            z = torch.empty(len(images), zc.shape[1], dtype=torch.float64)
            logits = torch.empty(len(images), lc.shape[1], dtype=torch.float64)
        z[start: start + len(zc)] = zc
        logits[start: start + len(lc)] = lc
    return z, logits


ROWS_PER_BLOCK = 8192  # rows per block of a whole-set reduction: memory stays flat in n


def scatter_matrix(z: torch.Tensor, centres: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """sum_i (z_i - c_i)(z_i - c_i)^T, float64 (D, D), accumulated over blocks of rows (no whole-size
    centred copy). c_i = ``centres`` (D,), or ``centres[index[i]]`` for centres (C, D) and index (n,)."""
    out = torch.zeros(z.shape[1], z.shape[1], dtype=torch.float64)
    for start in range(0, len(z), ROWS_PER_BLOCK):
        rows = slice(start, start + ROWS_PER_BLOCK)
        d = z[rows].double() - (centres if index is None else centres[index[rows]])
        out += d.T @ d
    return out
