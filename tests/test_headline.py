"""What `dvc exp show` shows and what the report opens with: the headline file's short keys (each AUROC with its
std), and one line per scenario naming the best single score and the best meta classifier, with the paired
difference against entropy, all against hand computations from per-repeat AUROCs."""

import numpy as np
import pandas as pd
import pytest

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.headline import MAX_KEY_LENGTH, headline_metrics
from gradmeta.evaluation.run import EvaluateConfig
from gradmeta.evaluation.summary import summarize_results
from gradmeta.evaluation.winners import WINNERS_END, WINNERS_START, paired_gain, scenario_winners, winner_lines
from gradmeta.meta.config import MetaConfig

AUROCS = {  # (scenario, test set, group) -> (input, classifier) -> AUROC per repeat
    ("misclassification", "digits", ""): {
        ("softmax/entropy", "threshold"): [0.90, 0.92, 0.91],
        ("detector/knn", "threshold"): [0.93, 0.96, 0.93],  # best single: mean 0.94
        ("softmax/max_prob", "threshold"): [0.89, 0.93, 0.92],
        ("gradient", "logistic"): [0.95, 0.94, 0.96],  # best meta: mean 0.95
        ("detectors+gradient", "logistic"): [0.94, 0.93, 0.95],
        ("detectors+gradient", "xgboost"): [0.96, 0.92, 0.94]},
    ("unknown", "pooled", ""): {
        ("softmax/entropy", "threshold"): [0.80, 0.84, 0.82],
        ("detector/knn", "threshold"): [0.97, 0.96, 0.98],
        ("gradient", "logistic"): [0.85, 0.86, 0.84],
        ("detectors+gradient", "logistic"): [0.90, 0.94, 0.92]},
    ("known_unknowns", "pooled", "seen"): {  # meta classifiers only: the single scores are the unknown cell's
        ("gradient", "logistic"): [0.91, 0.90, 0.92],
        ("detectors+gradient", "logistic"): [0.99, 0.97, 0.98]},
}


def results_frame() -> pd.DataFrame:
    rows = []
    for (scenario, test_set, group), cells in AUROCS.items():
        for (inp, clf), values in cells.items():
            rows += [{"repeat": r, "scenario": scenario, "test_set": test_set, "group": group, "input": inp,
                      "classifier": clf, "auroc": v, "accuracy": 0.5} for r, v in enumerate(values)]
    return pd.DataFrame(rows)


def hand(cell, inp, clf, against=None):
    values = np.array(AUROCS[cell][(inp, clf)])
    out = [values.mean(), values.std(ddof=1)]
    if against is not None:
        d = values - np.array(AUROCS[against[0]][against[1:]])
        out += [d.mean(), d.std(ddof=1)]
    return out


def test_each_scenario_names_its_best_single_score_and_meta_classifier_with_the_paired_gain_by_hand():
    winners = scenario_winners(results_frame(), "digits")
    assert [w.cell for w in winners] == list(AUROCS)
    mis, pooled, known_unknowns = winners
    entropy_mis = (("misclassification", "digits", ""), "softmax/entropy", "threshold")
    assert (mis.single.input, mis.meta.input, mis.meta.classifier) == ("detector/knn", "gradient", "logistic")
    for standing, (inp, clf) in ((mis.single, ("detector/knn", "threshold")), (mis.meta, ("gradient", "logistic"))):
        expected = hand(("misclassification", "digits", ""), inp, clf, entropy_mis)
        got = [standing.mean, standing.std, standing.gain_mean, standing.gain_std]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # the paired std is the std of the per-split differences, not of the two means: knn - entropy = .03, .04, .02
    assert mis.single.gain_std == pytest.approx(0.01, abs=1e-12)
    assert pooled.single.input == "detector/knn" and pooled.meta.input == "detectors+gradient"
    entropy_pooled = (("unknown", "pooled", ""), "softmax/entropy", "threshold")
    np.testing.assert_allclose([known_unknowns.meta.mean, known_unknowns.meta.std, known_unknowns.meta.gain_mean,
                                known_unknowns.meta.gain_std],
                               hand(("known_unknowns", "pooled", "seen"), "detectors+gradient", "logistic", entropy_pooled),
                               atol=1e-12)
    assert known_unknowns.single == pooled.single  # the same rows: the unknown cell's single scores
    np.testing.assert_allclose([known_unknowns.entropy.mean, known_unknowns.entropy.std],
                               hand(*entropy_pooled), atol=1e-12)


def test_the_report_opens_with_one_line_per_scenario():
    lines = winner_lines(scenario_winners(results_frame(), "digits"))
    body = lines[lines.index(WINNERS_START) + 1: lines.index(WINNERS_END)]
    assert len(body) == 3
    # knn 0.940 ± 0.017; knn - entropy = .03 .04 .02: +0.030 ± 0.010; gradient 0.950 ± 0.010, gain .05 .02 .05
    assert body[0] == ("- **misclassification (digits, correct vs wrong)**: best single score `detector/knn` 0.940 ± "
                       "0.017 (vs entropy +0.030 ± 0.010); best meta classifier `gradient` (logistic) 0.950 ± 0.010 "
                       "(vs entropy +0.040 ± 0.017); entropy 0.910 ± 0.010.")


def test_paired_gain_refuses_different_splits():
    a, b = pd.Series([0.9, 0.8], index=[0, 1]), pd.Series([0.7, 0.6], index=[0, 2])
    with pytest.raises(ValueError, match="different splits"):
        paired_gain(a, b)
    assert paired_gain(pd.Series([0.9]), pd.Series([0.7])) == pytest.approx((0.2, 0.0))


def test_the_headline_has_short_keys_and_a_std_beside_every_auroc():
    results = results_frame()
    summary = summarize_results(results, measures=("auroc", "accuracy"))
    headline = headline_metrics(summary, scenario_winners(results, "digits"), "digits", 0.9585, "logistic",
                                "detectors+gradient")
    assert set(headline) == {"cnn_error", "mis_entropy", "mis_entropy_std", "mis_meta", "mis_meta_std", "ood_best",
                             "ood_best_std", "ood_meta", "ood_meta_std"}
    assert max(len(k) for k in headline) <= MAX_KEY_LENGTH
    assert headline["cnn_error"] == pytest.approx(0.0415, abs=1e-12)
    expected = {"mis_entropy": hand(("misclassification", "digits", ""), "softmax/entropy", "threshold"),
                "mis_meta": hand(("misclassification", "digits", ""), "detectors+gradient", "logistic"),
                "ood_best": hand(("unknown", "pooled", ""), "detector/knn", "threshold"),
                "ood_meta": hand(("unknown", "pooled", ""), "detectors+gradient", "logistic")}
    for key, (mean, std) in expected.items():
        assert headline[key] == round(mean, 4) and headline[f"{key}_std"] == round(std, 4), key
    no_sets = headline_metrics(summary, [], "digits", 0.5, "logistic", None)
    assert set(no_sets) == {"cnn_error", "mis_entropy", "mis_entropy_std"}


@pytest.mark.parametrize(("prefix", "expected"), [("Oo", "up to 8 of a-z, 0-9 and _"), ("toolongprefix", "up to 8 of"),
                                                  ("a-b", "up to 8 of"), (3, "a string")])
def test_a_headline_prefix_that_dvc_would_show_badly_is_refused(prefix, expected):
    cfg = MetaConfig(classifiers=("logistic",), single_metrics=("softmax/entropy",), unknown_concepts=("noise",))
    with pytest.raises(GradmetaError, match=f"evaluate.headline_prefix must be {expected}"):
        EvaluateConfig.from_params({"evaluate": {"headline_prefix": prefix}}, cfg)
    assert EvaluateConfig.from_params({"evaluate": {"headline_prefix": "oo_"}}, cfg).headline_prefix == "oo_"
