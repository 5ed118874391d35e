"""The report's decomposition section: the gain of the gradient statistics beyond confidence and the
norms, paired split by split, against a hand computation from per-repeat AUROCs."""

import numpy as np
import pandas as pd
import pytest

from gradmeta.evaluation.decomposition import BASE_SET, FULL_SET, decomposition_section, paired_gains, verdict


def results_frame():
    base = {("misclassification", "digits"): [0.80, 0.82, 0.81], ("unknown", "noise"): [0.90, 0.95, 0.85],
            ("unknown", "pooled"): [0.70, 0.71, 0.72]}
    full = {("misclassification", "digits"): [0.85, 0.86, 0.88], ("unknown", "noise"): [0.91, 0.94, 0.86],
            ("unknown", "pooled"): [0.65, 0.66, 0.66]}
    rows = []
    for name, values in ((BASE_SET, base), (FULL_SET, full)):
        for (scenario, test_set), aurocs in values.items():
            rows += [{"repeat": r, "scenario": scenario, "test_set": test_set, "group": "", "input": name,
                      "classifier": "logistic", "auroc": v} for r, v in enumerate(aurocs)]
    rows.append({"repeat": 0, "scenario": "known_unknowns", "test_set": "pooled", "group": "seen", "input": FULL_SET,
                 "classifier": "logistic", "auroc": 0.5})  # not part of the section
    return pd.DataFrame(rows), base, full


def test_gains_are_paired_per_split_by_hand():
    frame, base, full = results_frame()
    gains = paired_gains(frame, "logistic")
    assert list(zip(gains.scenario, gains.test_set)) == list(base)
    for row, key in zip(gains.to_dict("records"), base, strict=True):
        diff = np.array(full[key]) - np.array(base[key])
        assert row["gain_mean"] == pytest.approx(diff.mean(), abs=1e-12)
        assert row["gain_std"] == pytest.approx(diff.std(ddof=1), abs=1e-12)
        assert row[f"{BASE_SET}_mean"] == pytest.approx(np.mean(base[key]), abs=1e-12)
        assert row[f"{FULL_SET}_std"] == pytest.approx(np.std(full[key], ddof=1), abs=1e-12)
    assert paired_gains(frame, "xgboost").empty


def test_verdicts_and_the_section():
    assert verdict(0.05, 0.01, 0.01) == "adds" and verdict(0.05, 0.06, 0.01) == "nothing"
    assert verdict(-0.05, 0.005, 0.01) == "loses" and verdict(0.005, 0.0, 0.01) == "nothing"
    frame, _, _ = results_frame()
    lines = decomposition_section(frame, "logistic", 0.01)
    assert lines[0] == "## What gradients add beyond confidence x feature norm"
    rows = [line for line in lines if line.startswith("| misclassification") or line.startswith("| unknown")]
    assert rows[0].endswith("| +0.053 ± 0.015 | adds |")  # 0.05, 0.04, 0.07
    assert rows[1].endswith("| nothing |") and rows[2].endswith("| loses |")
    assert "add AUROC on 1 of 3 test sets, lose on 1" in "\n".join(lines)
    assert decomposition_section(frame[frame.input == BASE_SET], "logistic", 0.01) == []
