"""The rejection scenario's parts against independent references: DOCTOR and SIRC against their
formulas on hand-made softmax outputs (scipy), REL-U's closed form by numpy, the test mixture's sizes
and seeds, and the report section and headline from hand-made results."""

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax

from gradmeta import DOCTOR, SIRC
from gradmeta.evaluation.rejection import KNOWN_ONLY, rejection_cells, summarize_rejection
from gradmeta.evaluation.rejection_report import judged_lines, rejection_headline, rejection_section
from gradmeta.meta.classifiers import RelUClassifier
from gradmeta.meta.scenarios import Split
from gradmeta.uncertainty.detectors.base import ScoringBatch

LOGITS = np.array([[4.0, 1.0, 0.0], [0.2, 0.1, 0.0], [30.0, -5.0, 2.0], [-1.0, 3.0, 2.9]])


def test_doctor_against_its_formulas():
    p = softmax(LOGITS, axis=1)
    alpha = (1 - (p**2).sum(1)) / (p**2).sum(1)
    beta = np.sort(p, axis=1)[:, :-1].sum(1) / p.max(1)  # 1 - p_max as the other probabilities' sum
    z = torch.zeros(len(LOGITS), 2, dtype=torch.float64)
    logits = torch.tensor(LOGITS)
    np.testing.assert_allclose(DOCTOR().predict_features(z, logits).numpy(), alpha, rtol=1e-12)
    columns = DOCTOR().columns(ScoringBatch(None, None, features=(z, logits)))
    np.testing.assert_allclose(columns["doctor_alpha"].numpy(), -alpha, rtol=1e-12)
    np.testing.assert_allclose(columns["doctor_beta"].numpy(), -beta, rtol=1e-9)


def test_sirc_against_its_formula():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 4)) * 2.0
    norms = np.linalg.norm(train, axis=1)
    a, b = norms.mean() - 3 * norms.std(ddof=1), 1 / norms.std(ddof=1)
    z = rng.normal(size=(4, 4)) * np.array([[0.1], [1.0], [3.0], [0.01]])
    p = softmax(LOGITS, axis=1)
    want = -np.sort(p, axis=1)[:, :-1].sum(1) * (1 + np.exp(-b * (np.linalg.norm(z, axis=1) - a)))
    detector = SIRC().fit_features(torch.tensor(train))
    np.testing.assert_allclose(detector.score_features(torch.tensor(z), torch.tensor(LOGITS)).numpy(), want, rtol=1e-9)
    restored = SIRC.from_state(detector.state())
    np.testing.assert_array_equal(restored.score_features(torch.tensor(z), torch.tensor(LOGITS)).numpy(),
                                  detector.score_features(torch.tensor(z), torch.tensor(LOGITS)).numpy())


def test_rel_u_closed_form_by_hand():
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(size=(300, 4)) * 2, axis=1)
    correct = (probs.max(1) > 0.6).astype(int)
    lam = 0.3
    m_wrong = probs[correct == 0].T @ probs[correct == 0] / (correct == 0).sum()
    m_right = probs[correct == 1].T @ probs[correct == 1] / (correct == 1).sum()
    d = np.maximum(lam * m_wrong - (1 - lam) * m_right, 0)
    np.fill_diagonal(d, 0)
    d /= np.linalg.norm(d)
    model = RelUClassifier(trade_off=lam).fit(probs, correct)
    np.testing.assert_allclose(model.relative_, d, rtol=1e-12, atol=1e-15)
    want = -np.einsum("ni,ij,nj->n", probs, d, probs)
    np.testing.assert_allclose(model.score_samples(probs), want, rtol=1e-10, atol=1e-15)
    assert model.relative_.T.tolist() == model.relative_.tolist() and (model.relative_ >= 0).all()


def test_the_mixture_sizes_and_seeds():
    splits = {"digits": Split(np.arange(0, 50), np.arange(50, 90)), "noise": Split(np.arange(0, 30), np.arange(30, 60)),
              "letters": Split(np.arange(0, 5), np.arange(5, 105))}
    cells = rejection_cells("digits", ["noise", "letters"], "leave_one_out", splits, 1.0, seed=3)
    by = {(c.test_set, c.group): c for c in cells}
    assert set(by) == {("noise", KNOWN_ONLY), ("noise", "unseen"), ("letters", KNOWN_ONLY), ("letters", "unseen"),
                       ("pooled", KNOWN_ONLY), ("pooled", "seen")}
    assert by[("noise", "unseen")].fit == "without_noise" and by[("pooled", "seen")].fit == "all_seen"
    sizes = {k: {name: len(pos) for name, pos in c.rows.parts} for k, c in by.items()}
    assert sizes[("noise", KNOWN_ONLY)] == {"digits": 40, "noise": 30}  # all 30: fewer than 1.0 x 40
    assert sizes[("letters", KNOWN_ONLY)] == {"digits": 40, "letters": 40}  # 40 of 100
    assert sum(sizes[("pooled", KNOWN_ONLY)].values()) == 80  # 40 known + 40 of the 130 unknown rows
    letters = dict(by[("letters", KNOWN_ONLY)].rows.parts)["letters"]
    assert set(letters) <= set(range(5, 105)) and list(letters) == sorted(letters)
    again = rejection_cells("digits", ["noise", "letters"], "leave_one_out", splits, 1.0, seed=3)
    assert all(np.array_equal(a, b) for c1, c2 in zip(cells, again) for (_, a), (_, b) in zip(c1.rows.parts, c2.rows.parts))
    other = dict(rejection_cells("digits", ["noise", "letters"], "leave_one_out", splits, 1.0, seed=4)[2].rows.parts)
    assert not np.array_equal(other["letters"], letters)
    half = rejection_cells("digits", ["noise", "letters"], ("noise",), splits, 0.5, seed=3)
    assert {(c.test_set, c.group, c.fit) for c in half} >= {("noise", "seen", "listed"), ("letters", "unseen", "listed"),
                                                          ("pooled", "listed", "listed")}
    assert len(dict(half[2].rows.parts)["letters"]) == 20


def results_frame():
    rows = []
    aurc = {("softmax/max_prob", "threshold", KNOWN_ONLY): [0.050, 0.052, 0.048],
            ("detector/sirc", "threshold", KNOWN_ONLY): [0.040, 0.041, 0.042],
            ("probabilities", "relu", KNOWN_ONLY): [0.045, 0.047, 0.046],
            ("detector/doctor_alpha", "threshold", KNOWN_ONLY): [0.049, 0.050, 0.051],
            ("all", "logistic", KNOWN_ONLY): [0.030, 0.032, 0.031],
            ("softmax", "logistic", KNOWN_ONLY): [0.045, 0.046, 0.047],
            ("all", "logistic", "seen"): [0.041, 0.039, 0.045],
            ("softmax", "logistic", "seen"): [0.020, 0.021, 0.019]}
    for (inp, clf, group), values in aurc.items():
        for r, v in enumerate(values):
            rows.append({"repeat": r, "scenario": "rejection", "test_set": "pooled", "group": group, "input": inp,
                         "classifier": clf, "auroc": 0.9, "aurc": v, "augrc": v / 2, "risk_at_80": v,
                         "risk_at_90": v, "risk_at_95": v})
            rows.append({**rows[-1], "test_set": "noise", "group": KNOWN_ONLY if group == KNOWN_ONLY else "unseen"})
    return pd.DataFrame(rows)


def test_judged_lines_and_section_from_hand_made_results():
    results = results_frame()
    summary = summarize_rejection(results)
    lines = judged_lines(summary, results, ["all", "softmax"], "logistic")
    assert lines[0].startswith("- **known concept only:** `all` wins")
    assert "SIRC (`detector/sirc`; AURC +0.0100 ± 0.0010: beats" in lines[0]  # 0.040-0.030, 0.041-0.032, 0.042-0.031
    assert lines[1].startswith("- **known unknowns (seen):** `softmax` wins")
    assert lines[2] == ("- The best single score (no meta classifier) is `detector/sirc` (threshold): AURC 0.0410 ± 0.0010, "
                        "AUGRC 0.0205 ± 0.0005.")
    section = "\n".join(rejection_section(summary, results, ["all", "softmax"], "logistic", ["noise"], 1.0))
    assert "| SIRC | `detector/sirc` (threshold) | known_only | 0.900 ± 0.000 | 0.0410 ± 0.0010 |" in section
    headline = rejection_headline(summary, ["all"], "logistic")
    assert headline == {"pooled": {"all": {"logistic": {"aurc": 0.031, "augrc": 0.0155}},
                                   "best_baseline": {"aurc": 0.041, "augrc": 0.0205}}}
    assert rejection_section(summary.iloc[0:0], results, ["all"], "logistic", ["noise"], 1.0) == []


def test_no_unknown_concept_leaves_an_empty_section_and_no_headline():
    empty = summarize_rejection(pd.DataFrame())
    assert empty.empty and "aurc_mean" in empty.columns
    assert rejection_section(empty, pd.DataFrame(), ["all"], "logistic", [], 1.0) == []
    assert rejection_headline(empty, ["all"], "logistic") == {}
    assert rejection_cells("digits", [], "leave_one_out", {"digits": Split(np.arange(3), np.arange(3, 6))}, 1.0, 0) == []
