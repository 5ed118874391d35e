"""GradNorm (Huang, Geng & Li, "On the Importance of Gradients for Detecting Distributional Shifts
in the Wild", NeurIPS 2021).

Score: the L1 norm of the gradient of the KL divergence between the uniform distribution u and the
softmax p, with respect to the weight W of the last (logits) layer. With logits z = W a + b, the
loss CE(u, p) = -sum_c u_c log p_c has dL/dz = p - u, so dL/dW = (p - u) (x) a and

    GradNorm(x) = ||(p - u) (x) a||_1 = ||p - u||_1 * ||a||_1     (temperature 1).

Sign: the paper finds the score larger for in-distribution inputs, so it is used as is
(higher = more likely in-distribution), like the gradmeta score convention.
"""

from __future__ import annotations

import torch


def gradnorm_scores(logits: torch.Tensor, penultimate: torch.Tensor) -> torch.Tensor:
    """GradNorm per sample, float64 (n,), from logits (n, C) and the logits layer's input (n, D)."""
    p = torch.softmax(logits.detach(), dim=1)
    a = penultimate.reshape(len(penultimate), -1)
    return (p - 1.0 / p.shape[1]).abs().sum(1, dtype=torch.float64) * a.abs().sum(1, dtype=torch.float64)
