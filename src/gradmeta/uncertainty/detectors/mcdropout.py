"""MC dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016).

T stochastic forward passes with the model's dropout layers active (everything else in eval mode),
seeded. From the mean predictive distribution p = mean_t softmax(f_t(x)):
- predictive entropy H[p] = -sum_c p_c log p_c;
- mutual information (BALD) = H[p] - mean_t H[softmax(f_t(x))];
- variation ratio = 1 - (count of the modal predicted class over the T passes) / T.
All three are uncertainties (higher = more likely wrong or out-of-distribution); ``scores`` returns
their negations under ``detector/mc_<name>`` (gradmeta's sign: higher = in-distribution, correct).
"""

from __future__ import annotations

import torch
from torch import nn

from gradmeta.core.errors import GradmetaError

DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def mc_dropout_uncertainty(model: nn.Module, x: torch.Tensor, passes: int = 20, seed: int = 0,
                           chunk_size: int = 256) -> dict[str, torch.Tensor]:
    """Predictive entropy, mutual information and variation ratio, float64 (n,) each."""
    if passes < 2:
        raise GradmetaError(f"MC dropout needs at least 2 passes, got {passes}")
    dropouts = [m for m in model.modules() if isinstance(m, DROPOUTS)]
    if not dropouts:
        raise GradmetaError("MC dropout needs a model with dropout layers")
    was_training = model.training
    model.eval()
    for m in dropouts:
        m.train()
    parts: list[dict[str, torch.Tensor]] = []
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(x), chunk_size):
                parts.append(_uncertainty(model, x[start: start + chunk_size], passes))
    finally:
        model.train(was_training)
    return {k: torch.cat([p[k] for p in parts]) for k in ("entropy", "mutual_information", "variation_ratio")}


def _uncertainty(model: nn.Module, x: torch.Tensor, passes: int) -> dict[str, torch.Tensor]:
    probs = torch.stack([torch.softmax(model(x).double(), dim=1) for _ in range(passes)])  # (T, n, C)
    mean = probs.mean(0)
    entropy = -(mean * mean.clamp_min(1e-300).log()).sum(1)
    expected = -(probs * probs.clamp_min(1e-300).log()).sum(2).mean(0)
    votes = torch.nn.functional.one_hot(probs.argmax(2), probs.shape[2]).sum(0)  # (n, C)
    return {"entropy": entropy, "mutual_information": (entropy - expected).clamp_min(0.0),
            "variation_ratio": 1.0 - votes.amax(1).double() / passes}
