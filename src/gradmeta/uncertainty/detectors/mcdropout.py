"""MC dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016).

T stochastic forward passes with the model's dropout layers active (everything else in eval mode),
seeded. From the mean predictive distribution p = mean_t softmax(f_t(x)):
- predictive entropy H[p] = -sum_c p_c log p_c;
- mutual information (BALD) = H[p] - mean_t H[softmax(f_t(x))];
- variation ratio = 1 - (count of the modal predicted class over the T passes) / T.
All three are uncertainties (higher = more likely wrong or out-of-distribution). The detector
:class:`MCDropout` gives their negations (gradmeta's sign: higher = in-distribution, correct) as the
three columns ``detector/mc_entropy``, ``detector/mc_mutual_information``, ``detector/mc_variation_ratio``;
its ``score`` is the first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import seed_param
from gradmeta.uncertainty.detectors.base import DETECTOR_CHUNK_SIZE, Detector, ScoringBatch, chunk_on_device
from gradmeta.uncertainty.detectors.registry import Param, register_detector
from gradmeta.uncertainty.model_calls.model_state import untouched

DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
PASSES = 10  # stochastic passes: the function's default and the detector's (the pipeline's)


def mc_dropout_uncertainty(model: nn.Module, x: torch.Tensor, passes: int = PASSES, seed: int = 0,
                           chunk_size: int = DETECTOR_CHUNK_SIZE, reuse_prefix: bool = True,
                           first_batch: int = 0, head_inputs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Predictive entropy, mutual information and variation ratio, float64 (n,) each.

    When the model's one dropout layer feeds its logits layer directly (dropout -> Linear, as in the
    paper's CNN and most classifiers), the passes differ only after the dropout: its input is computed
    once per chunk and each pass runs the dropout and the head alone. The masks are drawn in the same
    order from the same seed, so the result is the same as T full passes (``reuse_prefix=False``).

    The masks of each batch of ``chunk_size`` images come from their own seed, derived from ``seed``
    and the batch's number (``first_batch`` for the first): a slice of a set that starts at a batch
    boundary, with ``first_batch`` set, gets the same masks, hence the same values, as the whole set.

    ``head_inputs``: the logits layer's input in eval mode for every image (n, D), when already
    computed (the penultimate features of the feature detectors, in batches of ``chunk_size``).
    Where the dropout feeds the head, that is the dropout's input (dropout is the identity in eval
    mode), and the prefix forward is skipped; otherwise it is ignored."""
    if passes < 2:
        raise GradmetaError(f"MC dropout needs at least 2 passes, got {passes}")
    dropouts = [m for m in model.modules() if isinstance(m, DROPOUTS)]
    if not dropouts:
        raise GradmetaError("MC dropout needs a model with dropout layers (this one has none; in the pipeline, "
                            "take mc_dropout out of detectors.use)")
    parts: list[dict[str, torch.Tensor]] = []
    with untouched(model):  # eval, then dropout on; every module's mode and the random streams restored
        for m in dropouts:
            m.train()
        prefix = _dropout_before_head(model, dropouts, chunk_on_device(model, x[:1])) if reuse_prefix and len(x) else None
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for number, start in enumerate(range(0, len(x), chunk_size), start=first_batch):
                torch.manual_seed(batch_seed(seed, number))
                chunk = x[start: start + chunk_size]
                if prefix is None:  # each pass on its own copy: a model may change its input in place
                    probs = torch.stack([torch.softmax(model(chunk_on_device(model, chunk)).double(), dim=1)
                                         for _ in range(passes)])
                else:
                    dropout, head = prefix
                    h = (_captured_input(model, dropout, chunk_on_device(model, chunk)) if head_inputs is None
                         else chunk_on_device(model, head_inputs[start: start + chunk_size]).to(head.weight.dtype))
                    probs = torch.stack([torch.softmax(head(dropout(h)).double(), dim=1) for _ in range(passes)])
                parts.append({k: v.cpu() for k, v in _uncertainty(probs).items()})
    return {k: torch.cat([p[k] for p in parts]) for k in ("entropy", "mutual_information", "variation_ratio")}


@register_detector("mc_dropout", key_prefix="mc", params={
    "passes": Param(int, min=2, doc="stochastic forward passes"),
    "seed": seed_param("the dropout masks")})
class MCDropout(Detector):
    """MC dropout as one detector of three outputs (nothing to fit; the model needs dropout layers)."""

    OUTPUTS = ("entropy", "mutual_information", "variation_ratio")

    def __init__(self, passes: int = PASSES, seed: int = 0):
        if passes < 2:
            raise GradmetaError(f"MC dropout needs at least 2 passes, got {passes}")
        self.passes, self.seed = passes, seed

    def scores(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE, first_batch: int = 0,
               head_inputs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The three uncertainties negated, float64 (N,) each, keyed as :attr:`OUTPUTS` (``first_batch``,
        ``head_inputs``: as :func:`mc_dropout_uncertainty`'s)."""
        mc = mc_dropout_uncertainty(model, images, self.passes, self.seed, chunk_size, first_batch=first_batch,
                                    head_inputs=head_inputs)
        return {k: -mc[k] for k in self.OUTPUTS}

    def score(self, model: nn.Module, images: torch.Tensor, chunk_size: int = DETECTOR_CHUNK_SIZE) -> torch.Tensor:
        """Minus the predictive entropy, float64 (N,): higher = in-distribution."""
        return self.scores(model, images, chunk_size)["entropy"]

    def columns(self, batch: ScoringBatch) -> dict[str, torch.Tensor]:
        z, _ = batch.features()
        scores = self.scores(batch.model, batch.images, batch.chunk_size, batch.first_batch, head_inputs=z)
        return {f"mc_{k}": v for k, v in scores.items()}


def batch_seed(seed: int, batch: int) -> int:
    """The torch seed of batch number ``batch``: an independent stream per (seed, batch) (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _dropout_before_head(model: nn.Module, dropouts: list[nn.Module],
                         probe: torch.Tensor) -> tuple[nn.Module, nn.Linear] | None:
    """(dropout, head) when the only dropout's output is exactly the input of the logits layer (the
    ``nn.Linear`` whose output is the model's output), else None; one forward of ``probe`` tells both."""
    if len(dropouts) != 1:
        return None
    dropout = dropouts[0]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    seen: dict[object, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, (i[0] if i else None, o)))
             for m in (dropout, *linears)]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            logits = model(probe)
    finally:
        for h in hooks:
            h.remove()
    head = next((m for m in linears if m in seen and seen[m][1] is logits), None)
    if head is None or dropout not in seen or seen[head][0] is not seen[dropout][1]:
        return None
    return dropout, head


def _captured_input(model: nn.Module, dropout: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The dropout layer's input on ``x``, from one forward pass with the dropout switched off."""
    captured: list[torch.Tensor] = []
    handle = dropout.register_forward_pre_hook(lambda m, i: captured.append(i[0]))
    dropout.eval()
    try:
        model(x)
    finally:
        dropout.train()
        handle.remove()
    return captured[0]


def _uncertainty(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three uncertainties of softmax outputs ``probs`` (T, n, C)."""
    mean = probs.mean(0)
    entropy = -(mean * mean.clamp_min(1e-300).log()).sum(1)
    expected = -(probs * probs.clamp_min(1e-300).log()).sum(2).mean(0)
    votes = torch.nn.functional.one_hot(probs.argmax(2), probs.shape[2]).sum(0)  # (n, C)
    return {"entropy": entropy, "mutual_information": (entropy - expected).clamp_min(0.0),
            "variation_ratio": 1.0 - votes.amax(1).double() / probs.shape[0]}
