"""Softmax metrics of logits, one value per image (natural logarithms)."""

from __future__ import annotations

import torch

SOFTMAX_METRICS = ("entropy", "max_prob", "margin", "energy", "max_logit")


def softmax_metrics(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metrics of logits (N, C): ``entropy`` -sum p log p, ``max_prob``, ``margin`` (top1 - top2
    probability), ``energy`` -logsumexp(logits), ``max_logit``. Keys are ``softmax/<name>``; all finite."""
    logits = logits.detach().double()
    log_p = torch.log_softmax(logits, dim=1)
    p = log_p.exp()
    top2 = p.topk(min(2, p.shape[1]), dim=1).values
    margin = top2[:, 0] - top2[:, 1] if p.shape[1] > 1 else top2[:, 0]
    out = {
        "entropy": -(p * log_p).sum(1),
        "max_prob": top2[:, 0],
        "margin": margin,
        "energy": -torch.logsumexp(logits, dim=1),
        "max_logit": logits.max(1).values,
    }
    return {f"softmax/{k}": v for k, v in out.items()}
