"""ExGrad, the expected gradient norm (Igoe, Song, Mukherjee, Ganguly & Pennington, "How useful are
gradients for OOD detection really?", arXiv 2205.10439, 2022), at the logits layer in closed form.

The per-sample gradient of the cross-entropy at class y with respect to the logits layer's weight W
is (p - e_y) a^T, so its L1 norm is ||p - e_y||_1 ||a||_1 = 2 (1 - p_y) ||a||_1. Its expectation under
the model's own predictive distribution y ~ p is exact and needs no backward pass:

    ExGrad(x) = sum_y p_y 2 (1 - p_y) ||a||_1 = 2 (1 - sum_y p_y^2) ||a||_1.

An uncertain prediction has a large expected gradient, so the score (higher = in-distribution) is
-ExGrad; ``predict_features`` = ExGrad. Cost: one norm per image of the shared penultimate features.

For every other layer the expectation has no closed form: E_y ||J^T (p - e_y)||^2 = tr(J^T (diag(p) -
p p^T) J) with J the Jacobian of the logits with respect to the layer's output needs C - 1 vector-Jacobian
products, i.e. one backward pass per class (C times the cross-entropy target's backward), which is
why the gradient engine has no ``expected`` target (README, "The field's detectors").
"""

from __future__ import annotations

import torch

from gradmeta.uncertainty.detectors.base import StatelessFeatureDetector
from gradmeta.uncertainty.detectors.registry import register_detector


@register_detector("exgrad")
class ExGrad(StatelessFeatureDetector):
    """The logits layer's expected L1 weight-gradient norm under y ~ softmax (nothing to fit)."""

    def predict_features(self, z: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        if logits is None:
            raise ValueError("ExGrad needs the logits of the features")
        p = torch.softmax(logits.double(), dim=1)
        return 2.0 * (1.0 - p.square().sum(1)) * z.double().abs().sum(1)
