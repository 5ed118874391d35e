"""DOCTOR (Granese, Romanelli, Gorla, Palamidessi & Piantanida, "DOCTOR: A Simple Method for
Detecting Misclassification Errors", NeurIPS 2021): two rejection scores of the softmax p alone.

    D_alpha(x) = (1 - sum_k p_k^2) / sum_k p_k^2        D_beta(x) = (1 - p_max) / p_max

Both are larger for a prediction more likely wrong; the columns are their negations (higher = accept):
``detector/doctor_alpha`` = -D_alpha, ``detector/doctor_beta`` = -D_beta. ``score`` / ``predict`` use
D_alpha. 1 - p_max is computed as the sum of the other probabilities, so it does not cancel to 0 for a
confident prediction. Nothing to fit; cost: one softmax per image of the shared logits.
"""

from __future__ import annotations

import torch

from gradmeta.uncertainty.detectors.base import ScoringBatch, StatelessFeatureDetector
from gradmeta.uncertainty.detectors.registry import register_detector


def softmax_top(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p (n, C), p_max (n,), 1 - p_max (n,)), float64, of logits (n, C); 1 - p_max is the sum of the
    other probabilities, so it does not cancel to 0 for a confident prediction."""
    p = torch.softmax(logits.double(), dim=1)
    top = p.argmax(1, keepdim=True)
    return p, p.gather(1, top).squeeze(1), p.scatter(1, top, 0.0).sum(1)


def doctor_scores(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D_alpha, D_beta), float64 (n,) each, of logits (n, C)."""
    p, top, rest = softmax_top(logits)
    gini = p.square().sum(1)
    return (1.0 - gini) / gini, rest / top


@register_detector("doctor")
class DOCTOR(StatelessFeatureDetector):
    """DOCTOR's D_alpha and D_beta from the softmax (nothing to fit)."""

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        if logits is None:
            raise ValueError("DOCTOR needs the logits of the features")
        return doctor_scores(logits)[0]

    def columns(self, batch: ScoringBatch) -> dict[str, torch.Tensor]:
        alpha, beta = doctor_scores(batch.features()[1])
        return {"doctor_alpha": -alpha, "doctor_beta": -beta}
