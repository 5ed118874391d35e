"""AURC, AUGRC and selective risk against a direct computation from sorted risks, ties included:
for each row, the risk of accepting every row whose score is at least its own."""

import numpy as np
import pytest

from gradmeta.evaluation.risk import risk_coverage, risk_measures


def direct(scores, target):
    scores, target = np.asarray(scores, float), np.asarray(target, int)
    n = len(scores)
    selective, generalised = [], []
    for s in scores:  # accepting every row with a score >= s: the row's own threshold
        accepted = scores >= s
        wrong = int(((target == 0) & accepted).sum())
        selective.append(wrong / accepted.sum())
        generalised.append(wrong / n)
    return float(np.mean(selective)), float(np.mean(generalised))


CASES = [
    ([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 0]),          # perfect ranking
    ([0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1]),          # reversed
    ([0.5, 0.5, 0.5, 0.2, 0.2], [1, 0, 1, 0, 1]),  # ties, accepted together
    ([3.0, 1.0, 1.0, 1.0, -2.0, 7.0], [1, 0, 1, 1, 0, 1]),
]


@pytest.mark.parametrize("scores,target", CASES)
def test_aurc_and_augrc_against_the_direct_computation(scores, target):
    got = risk_measures(scores, target)
    aurc, augrc = direct(scores, target)
    assert abs(got["aurc"] - aurc) <= 1e-12 and abs(got["augrc"] - augrc) <= 1e-12


def test_random_cases_with_ties_and_selective_risk():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 15, 200).astype(float)  # many ties
        target = (rng.random(200) < 0.7).astype(int)
        got = risk_measures(scores, target)
        aurc, augrc = direct(scores, target)
        assert abs(got["aurc"] - aurc) <= 1e-12 and abs(got["augrc"] - augrc) <= 1e-12
        order = np.sort(np.unique(scores))[::-1]
        for c in (80, 90, 95):  # the first threshold (whole tie groups) that covers c %
            t = next(t for t in order if (scores >= t).mean() >= c / 100)
            want = ((target == 0) & (scores >= t)).sum() / (scores >= t).sum()
            assert abs(got[f"risk_at_{c}"] - want) <= 1e-12


def test_hand_case():
    # accept 0.9 (right), then 0.8 (wrong), then the tie at 0.5 (one right, one wrong)
    coverage, risk, generalised = risk_coverage([0.9, 0.8, 0.5, 0.5], [1, 0, 1, 0])
    np.testing.assert_allclose(coverage, [0.25, 0.5, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.5, 0.5])
    np.testing.assert_allclose(generalised, [0.0, 0.25, 0.5])
    got = risk_measures([0.9, 0.8, 0.5, 0.5], [1, 0, 1, 0])
    assert got["aurc"] == pytest.approx(0.25 * 0 + 0.25 * 0.5 + 0.5 * 0.5, abs=1e-15)
    assert got["augrc"] == pytest.approx(0.25 * 0.25 + 0.5 * 0.5, abs=1e-15)
    assert got["risk_at_80"] == got["risk_at_95"] == 0.5
