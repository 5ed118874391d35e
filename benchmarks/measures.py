"""The evaluate stage's measures: ``gradmeta.evaluation.measure_all`` (one sort per call) against
the same six numbers from scikit-learn's validated functions (``roc_curve`` twice, ``auc``,
``average_precision_score`` twice, ``accuracy_score``: what ``measure_all`` called before), in one
process.

Each round times both on the same scores (a meta classifier's probabilities stand-in: float32
values in [0, 1], so there are ties) for each row count; prints the calls/s of each and the median
over rounds of the per-round ratio, and checks the two agree exactly.

    python benchmarks/measures.py [--rows 2000 --rows 20000] [--calls 50] [--rounds 5]
"""

from __future__ import annotations

import statistics
import time

import click
import numpy as np
from sklearn.metrics import accuracy_score, auc, average_precision_score, roc_curve

from gradmeta.evaluation.measures import measure_all


def scikit_learn_measures(scores: np.ndarray, target: np.ndarray, threshold: float) -> dict[str, float]:
    """The baseline: scikit-learn's validated calls."""
    fpr, tpr, _ = roc_curve(target, scores)
    fpr_out, tpr_out, _ = roc_curve(1 - target, -scores)
    return {
        "accuracy": float(accuracy_score(target, (scores >= threshold).astype(int))),
        "auroc": float(auc(fpr, tpr)),
        "aupr_wrong_positive": float(average_precision_score(1 - target, -scores)),
        "aupr_correct_positive": float(average_precision_score(target, scores)),
        "fpr_at_95tpr_correct_positive": float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
        "fpr_at_95tpr_wrong_positive": float(fpr_out[np.searchsorted(tpr_out, 0.95, side="left")]),
    }


def calls_per_second(fn, scores: np.ndarray, target: np.ndarray, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(scores, target, 0.5)
    return calls / (time.perf_counter() - start)


@click.command()
@click.option("--rows", multiple=True, type=int, default=(2000, 20000), show_default=True)
@click.option("--calls", default=50, show_default=True)
@click.option("--rounds", default=5, show_default=True)
def main(rows: tuple[int, ...], calls: int, rounds: int) -> None:
    rng = np.random.default_rng(0)
    print(f"measures per call: measure_all vs scikit-learn's functions, {calls} calls x {rounds} rounds")
    for n in rows:
        target = (rng.random(n) < 0.7).astype(int)
        scores = np.clip(0.6 * target + rng.normal(0.2, 0.25, n), 0, 1).astype(np.float32).astype(np.float64)
        if measure_all(scores, target, 0.5) != scikit_learn_measures(scores, target, 0.5):
            raise SystemExit(f"{n} rows: measure_all differs from scikit-learn")
        ours, theirs, ratios = [], [], []
        for _ in range(rounds):
            a = calls_per_second(measure_all, scores, target, calls)
            b = calls_per_second(scikit_learn_measures, scores, target, calls)
            ours.append(a)
            theirs.append(b)
            ratios.append(a / b)
        print(f"  {n:>7} rows ({len(np.unique(scores))} distinct scores): measure_all {statistics.median(ours):8.0f} "
              f"calls/s, scikit-learn {statistics.median(theirs):6.0f} calls/s; "
              f"ratio (median per round) {statistics.median(ratios):.1f}x; values identical")


if __name__ == "__main__":
    main()
