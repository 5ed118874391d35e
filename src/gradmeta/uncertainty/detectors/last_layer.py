"""The logits layer's per-sample gradient as two unit factors, for the gradient-direction detectors
(:mod:`.grad_knn`, :mod:`.grad_pca`).

With logits l = W a + b (W (C, D), b (C,)) and the cross-entropy at the predicted class
y = argmax l, the per-sample gradient of (W, b) is the outer product e [a, 1]^T with
e = softmax(l) - onehot(y) (C,): vec(g) = e (x) a~, a~ = [a, 1] (D + 1,). Its direction is
g / ||g|| = (e / ||e||) (x) (a~ / ||a~||), and the cosine of two such gradients factors:
cos(g_i, g_j) = cos(e_i, e_j) cos(a~_i, a~_j). Nothing of size C (D + 1) is ever materialised.

e's direction is computed without cancellation: with m = the largest logit besides y's,
e is proportional to q with q_c = exp(l_c - m) for c != y and q_y = -sum_{c != y} q_c (one entry of
q is 1, so it never underflows to 0 even where softmax(l) rounds to onehot(y) and e to 0).
"""

from __future__ import annotations

import torch

from gradmeta.core.errors import GradmetaError


def error_directions(logits: torch.Tensor) -> torch.Tensor:
    """e / ||e||_2 (n, C) float64 of e = softmax(logits) - onehot(argmax logits), logits (n, C), C >= 2."""
    logits = logits.double()
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise GradmetaError(f"the gradient-direction detectors need logits (n, C) with C >= 2, got {tuple(logits.shape)}")
    pred = logits.argmax(1, keepdim=True)
    others = logits.scatter(1, pred, float("-inf"))
    q = torch.exp(others - others.amax(1, keepdim=True))  # 0 at y, 1 at the runner-up
    q = q.scatter(1, pred, -q.sum(1, keepdim=True))
    return q / q.norm(dim=1, keepdim=True)


def input_directions(z: torch.Tensor) -> torch.Tensor:
    """[a, 1] / ||[a, 1]||_2 (n, D + 1) float64 of the logits layer's inputs z (n, D) (the bias's 1 appended)."""
    z = z.double()
    extended = torch.cat([z, z.new_ones(len(z), 1)], dim=1)
    return extended / extended.norm(dim=1, keepdim=True)
