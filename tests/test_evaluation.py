"""Each measure against an independent computation on hand-made scores (ties, a constant score)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, auc, average_precision_score, roc_curve

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.measures import measure_all, measure_names
from gradmeta.evaluation.summary import summarize_results, summary_row
from gradmeta.meta.classifiers import best_threshold


def brute_auroc(scores, target):
    """Probability that a random correct row outscores a random wrong one (ties count one half)."""
    pos, neg = scores[target == 1], scores[target == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_average_precision(scores, target):
    """Sum over distinct thresholds of (recall step) x precision, positives = target 1."""
    total, prev_recall = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        accepted = scores >= t
        tp = (accepted & (target == 1)).sum()
        recall = tp / (target == 1).sum()
        precision = tp / accepted.sum()
        total += (recall - prev_recall) * precision
        prev_recall = recall
    return total


def brute_fpr_at_95(scores, target):
    for t in sorted(set(scores), reverse=True):
        accepted = scores >= t
        if accepted[target == 1].mean() >= 0.95:
            return accepted[target == 0].mean()
    return 1.0


CASES = {
    "hand": (np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1]), np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 0])),
    "ties": (np.array([0.5, 0.5, 0.5, 0.2, 0.2, 0.9, 0.9, 0.1]), np.array([1, 0, 1, 0, 1, 1, 0, 0])),
    "constant": (np.full(6, 3.0), np.array([1, 1, 0, 1, 0, 1])),
}


@pytest.mark.parametrize("case", CASES)
def test_measures_match_brute_force(case):
    scores, target = CASES[case]
    m = measure_all(scores, target, threshold=0.5)
    assert m["auroc"] == pytest.approx(brute_auroc(scores, target))
    assert m["aupr_correct_positive"] == pytest.approx(brute_average_precision(scores, target))
    assert m["aupr_wrong_positive"] == pytest.approx(brute_average_precision(-scores, 1 - target))
    assert m["fpr_at_95tpr_correct_positive"] == pytest.approx(brute_fpr_at_95(scores, target))
    # OOD positive: flag low scores; the share of correct rows flagged when 95% of wrong ones are
    assert m["fpr_at_95tpr_wrong_positive"] == pytest.approx(brute_fpr_at_95(-scores, 1 - target))
    assert m["accuracy"] == pytest.approx(((scores >= 0.5) == target.astype(bool)).mean())


def test_hand_computed_values():
    scores, target = CASES["hand"]
    m = measure_all(scores, target, threshold=0.58)
    # 5 correct, 5 wrong; pairs correct > wrong: 0.9,0.8 beat 5 each, 0.6,0.55 beat 4, 0.4 beats 3 -> 21/25
    assert m["auroc"] == pytest.approx(21 / 25)
    assert m["accuracy"] == pytest.approx(0.7)  # accepts 0.9-0.6 (3 correct), rejects 4 of the 6 others rightly
    # in-distribution positive: 95% of the 5 correct rows needs all 5 (down to 0.4): wrong 0.7, 0.5 pass -> 2/5
    assert m["fpr_at_95tpr_correct_positive"] == pytest.approx(2 / 5)
    # OOD positive: rejecting all 5 wrong rows needs the threshold at 0.7: correct 0.6, 0.55, 0.4 rejected -> 3/5
    assert m["fpr_at_95tpr_wrong_positive"] == pytest.approx(3 / 5)
    constant = measure_all(*CASES["constant"], threshold=3.0)
    assert constant["auroc"] == 0.5 and constant["fpr_at_95tpr_correct_positive"] == 1.0


def sklearn_measures(scores, target, threshold):
    """The measures as scikit-learn's validated functions compute them (the convention measure_all keeps)."""
    fpr, tpr, _ = roc_curve(target, scores)
    fpr_out, tpr_out, _ = roc_curve(1 - target, -scores)
    return {
        "accuracy": accuracy_score(target, (scores >= threshold).astype(int)),
        "auroc": auc(fpr, tpr),
        "aupr_wrong_positive": average_precision_score(1 - target, -scores),
        "aupr_correct_positive": average_precision_score(target, scores),
        "fpr_at_95tpr_correct_positive": fpr[np.searchsorted(tpr, 0.95, side="left")],
        "fpr_at_95tpr_wrong_positive": fpr_out[np.searchsorted(tpr_out, 0.95, side="left")],
    }


@pytest.mark.parametrize("kind", ["continuous", "few_values", "rounded"])
def test_measures_equal_scikit_learn_bit_for_bit(kind):
    """One sort replaces four validated scikit-learn calls; every value must stay exactly the same,
    ties and ROC's dropped collinear points included."""
    rng = np.random.default_rng(len(kind))
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 300))
        if kind == "continuous":
            scores = rng.normal(size=n)
        elif kind == "few_values":
            scores = rng.integers(0, int(rng.integers(1, 8)), n).astype(float)
        else:
            scores = np.round(rng.random(n), 2)
        target = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(int)
        if target.min() == target.max():
            continue
        ours = measure_all(scores, target, threshold=float(np.median(scores)))
        assert ours == {k: float(v) for k, v in sklearn_measures(scores, target, float(np.median(scores))).items()}
        checked += 1
    assert checked > 200


def test_best_threshold_maximises_training_accuracy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 6, 30).astype(float)
        target = rng.integers(0, 2, 30)
        t = best_threshold(scores, target)
        achieved = ((scores >= t) == target.astype(bool)).mean()
        candidates = [-np.inf, *np.unique(scores), np.inf]
        best = max(((scores >= c) == target.astype(bool)).mean() for c in candidates)
        assert achieved == pytest.approx(best)
    assert best_threshold(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])) == 2.5
    assert best_threshold(np.full(4, 7.0), np.array([1, 1, 1, 0])) == 7.0  # accept all
    assert best_threshold(np.full(4, 7.0), np.array([0, 0, 1, 0])) == np.inf  # reject all


def test_single_class_and_empty_sets_are_errors():
    with pytest.raises(GradmetaError, match="every row is correct"):
        measure_all(np.array([0.1, 0.2]), np.array([1, 1]), 0.5, "scenario x")
    with pytest.raises(GradmetaError, match="empty"):
        measure_all(np.array([]), np.array([]), 0.5)


def test_summarize_results_uses_sample_std_per_result_key():
    keys = {"scenario": "unknown", "test_set": "noise", "group": "", "input": "softmax/entropy", "classifier": "threshold"}
    measures = {m: 0.0 for m in measure_names()}
    rows = [{**keys, "repeat": r, **measures, "auroc": a} for r, a in enumerate([0.7, 0.8, 0.95])]
    rows.append({**keys, "test_set": "letters", "repeat": 0, **measures, "auroc": 0.6})  # a single repeat
    summary = summarize_results(pd.DataFrame(rows))
    noise = summary_row(summary, "unknown", "noise", "", "softmax/entropy", "threshold")
    assert noise.auroc_mean == pytest.approx(np.mean([0.7, 0.8, 0.95]))
    assert noise.auroc_std == pytest.approx(np.std([0.7, 0.8, 0.95], ddof=1))
    letters = summary_row(summary, "unknown", "letters", "", "softmax/entropy", "threshold")
    assert (letters.auroc_mean, letters.auroc_std) == (0.6, 0.0)  # one value: std 0, not NaN
    assert summary_row(summary, "unknown", "omniglot", "", "softmax/entropy", "threshold") is None


def test_unstable_cells_are_marked_and_the_claims_resting_on_them_say_so():
    from gradmeta.evaluation.claims import claim_b
    from gradmeta.evaluation.report import main_table, unstable_claim_lines

    rows = []
    for test_set, ent, comb in [("noise", (0.99, 0.001), (0.73, 0.42)), ("letters", (0.85, 0.004), (0.87, 0.006)),
                                ("pooled", (0.93, 0.002), (0.94, 0.03))]:
        rows.append({"scenario": "unknown", "test_set": test_set, "group": "", "input": "softmax/entropy",
                     "classifier": "threshold", "auroc_mean": ent[0], "auroc_std": ent[1]})
        rows.append({"scenario": "unknown", "test_set": test_set, "group": "", "input": "entropy+gradient",
                     "classifier": "logistic", "auroc_mean": comb[0], "auroc_std": comb[1]})
    summary = pd.DataFrame(rows).assign(accuracy_mean=0.9, accuracy_std=0.0)
    table = main_table(summary, [("entropy+gradient", "logistic")], "digits", ["noise", "letters"], unstable_std=0.05)
    assert "0.730 ± 0.420†" in table and "0.870 ± 0.006 |" in table and "0.940 ± 0.030 |" in table
    verdict = claim_b(summary, ["noise", "letters"], "logistic")
    assert unstable_claim_lines([verdict], 0.05) == [
        "(b) rests on 1 cell(s) with an AUROC std above 0.05: noise entropy+gradient (0.420)"]
    assert unstable_claim_lines([verdict], 0.5) == []
