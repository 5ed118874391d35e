"""Risk-coverage measures of selective classification: a score accepts the rows at or above a threshold
(higher = more likely correct), and the classifier's prediction is kept only for those.

For the distinct thresholds t_1 > t_2 > ... of the scores (a group of tied scores is accepted
together), with n_j rows accepted at t_j of which w_j are wrong, out of n rows:

- coverage c_j = n_j / n; selective risk r_j = w_j / n_j; generalised risk g_j = w_j / n (the joint
  probability of being accepted and wrong, Traub et al., NeurIPS 2024);
- ``aurc`` = sum_j (c_j - c_{j-1}) r_j (Geifman et al., ICLR 2019: the mean over the rows of the
  selective risk at the threshold that accepts them, each row taking its tie group's risk), lower is
  better;
- ``augrc`` = sum_j (c_j - c_{j-1}) g_j (Traub et al.'s area under the generalised risk), lower is
  better;
- ``risk_at_<p>``: the selective risk at the first threshold whose coverage reaches p % (80, 90, 95).
"""

from __future__ import annotations

import numpy as np

from gradmeta.core.errors import GradmetaError

COVERAGES = (80, 90, 95)
RISK_MEASURES = ("aurc", "augrc", *(f"risk_at_{c}" for c in COVERAGES))


def risk_coverage(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coverage, selective risk, generalised risk), float64 (g,), one entry per distinct threshold from
    the highest score down; ``target`` 1 = correct (accepting it is right), 0 = wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target).astype(int)
    if len(target) == 0 or len(scores) != len(target):
        raise GradmetaError(f"risk-coverage needs scores and targets of one non-zero length, got {len(scores)} "
                            f"and {len(target)}")
    if not np.isfinite(scores).all():
        raise GradmetaError("risk-coverage: scores must be finite")
    _, group, size = np.unique(-scores, return_inverse=True, return_counts=True)  # highest score first
    wrong = np.bincount(group[target == 0], minlength=len(size))
    accepted, accepted_wrong = np.cumsum(size), np.cumsum(wrong)
    n = len(target)
    return accepted / n, accepted_wrong / accepted, accepted_wrong / n


def risk_measures(scores: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """AURC, AUGRC and the selective risk at 80 / 90 / 95 % coverage (module docstring)."""
    coverage, risk, generalised = risk_coverage(scores, target)
    steps = np.diff(np.r_[0.0, coverage])
    out = {"aurc": float(np.sum(steps * risk)), "augrc": float(np.sum(steps * generalised))}
    for c in COVERAGES:
        first = int(np.searchsorted(coverage, c / 100.0 - 1e-12, side="left"))
        out[f"risk_at_{c}"] = float(risk[min(first, len(risk) - 1)])
    return out
