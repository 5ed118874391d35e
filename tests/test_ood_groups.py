"""OOD groups (evaluate.groups): OpenOOD's detection target per set, the group numbers as the mean of the
sets' numbers within each split, the report's sections, and OpenOOD's published table only for the real
protocol."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from test_meta import UNKNOWNS, frame

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.groups import OOD, OOD_GROUP, group_results, groups_headline, groups_section
from gradmeta.evaluation.openood import PUBLISHED, protocol_status, reference_section
from gradmeta.evaluation.run import EvaluateConfig
from gradmeta.evaluation.scoring import score_all
from gradmeta.evaluation.summary import summarize_results, summary_row
from gradmeta.meta import MetaConfig, fit_all

GROUPS = {"near": ("letters", "omniglot"), "far": ("cifar10", "noise")}


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    frames = {"digits": frame("digits", 300, rng), **{c: frame(c, 80, rng) for c in UNKNOWNS}}
    cfg = MetaConfig(repeats=3, classifiers=("logistic",), single_metrics=("softmax/entropy",),
                     feature_sets={"gradient": ("grad/*",)})
    fitted = fit_all(frames, cfg, {})
    results, _ = score_all(frames, fitted, (), ood_concepts=("letters", "omniglot", "cifar10", "noise"))
    return frames, fitted, results


def hand_auroc(frames, split, concept):
    """OpenOOD's per-set AUROC by hand: every digits meta-test row is in-distribution (1), correct or not, every
    row of the concept's meta-test half OOD (0); the score is minus the entropy (the sign the fit learns:
    the fixture's wrong rows have the larger entropy)."""
    known, other = frames["digits"], frames[concept]
    scores = -np.concatenate([known["softmax/entropy"].to_numpy()[split["digits"].test],
                              other["softmax/entropy"].to_numpy()[split[concept].test]]).astype(np.float64)
    target = np.r_[np.ones(len(split["digits"].test)), np.zeros(len(split[concept].test))]
    return roc_auc_score(target, scores)


def test_the_ood_target_counts_every_known_row_in_distribution(scored):
    frames, fitted, results = scored
    rows = results[(results.scenario == OOD) & (results.input == "softmax/entropy")]
    assert len(rows) == 3 * 4
    for _, row in rows.iterrows():
        expected = hand_auroc(frames, fitted.splits[row["repeat"]], row["test_set"])
        assert row["auroc"] == pytest.approx(expected, abs=1e-12)
    # the misclassified digits rows count as in-distribution: the same cell differs from the 'unknown' one
    unknown = results[(results.scenario == "unknown") & (results.test_set == "letters")
                      & (results.input == "softmax/entropy")]["auroc"].to_numpy()
    ood = rows[rows.test_set == "letters"]["auroc"].to_numpy()
    assert not np.allclose(unknown, ood)


def test_a_group_is_the_mean_of_its_sets_within_each_split_then_mean_and_std_over_splits(scored):
    frames, fitted, results = scored
    grouped = group_results(results, GROUPS)
    summary = summarize_results(grouped)
    for name, members in GROUPS.items():
        per_split = [np.mean([hand_auroc(frames, fitted.splits[r], c) for c in members]) for r in range(3)]
        row = summary_row(summary, OOD_GROUP, name, "", "softmax/entropy", "threshold")
        assert row["auroc_mean"] == pytest.approx(np.mean(per_split), abs=1e-12)
        assert row["auroc_std"] == pytest.approx(np.std(per_split, ddof=1), abs=1e-12)
    assert set(grouped.test_set) == {"near", "far"} and set(grouped.classifier) == {"threshold", "logistic"}


def test_the_section_and_the_headline_carry_every_group(scored):
    _, _, results = scored
    summary = summarize_results(pd.concat([results, group_results(results, GROUPS)], ignore_index=True))
    rows = [("softmax/entropy", "threshold"), ("gradient", "logistic")]
    text = "\n".join(groups_section(summary, rows, GROUPS, "digits"))
    assert "| `gradient` | logistic |" in text and "near AUROC" in text and "far FPR@95" in text
    assert "letters AUROC" in text and "noise AUROC" in text
    headline = groups_headline(summary, rows, GROUPS)
    assert set(headline) == {"near", "far"}
    near = summary_row(summary, OOD_GROUP, "near", "", "gradient", "logistic")
    assert headline["near"]["gradient"]["logistic"]["auroc"] == pytest.approx(near["auroc_mean"])
    assert groups_section(summary, rows, {}, "digits") == []


def test_groups_are_validated_against_the_unknown_concepts():
    meta = MetaConfig(unknown_concepts=("letters", "noise"))
    ok = EvaluateConfig.from_params({"evaluate": {"groups": {"a": ["letters"], "b": ["noise", "letters"]}}}, meta)
    assert ok.groups == {"a": ("letters",), "b": ("noise", "letters")} and ok.ood_concepts == ("letters", "noise")
    assert EvaluateConfig.from_params({"evaluate": {"groups": None}}, meta).groups == {}
    with pytest.raises(GradmetaError, match="evaluate.groups.a"):
        EvaluateConfig.from_params({"evaluate": {"groups": {"a": ["omniglot"]}}}, meta)
    with pytest.raises(GradmetaError, match="evaluate.groups.a"):
        EvaluateConfig.from_params({"evaluate": {"groups": {"a": []}}}, meta)


PROTOCOL_GROUPS = {"near": ("cifar100", "tin"), "far": ("mnist", "svhn", "texture", "places365")}
SOURCES = {"cifar10": "cifar10", "cifar100": "cifar100", "tin": "tinyimagenet", "mnist": "mnist", "svhn": "svhn",
           "texture": "textures", "places365": "places365"}


def metas(kind_of=lambda concept: "archive"):
    return {c: {"source": s, "kind": kind_of(c)} for c, s in SOURCES.items()}


def protocol_summary():
    """A summary with every published method's single score at known group AUROCs."""
    rows = []
    for i, (_, (inp, _, _)) in enumerate(PUBLISHED.items()):
        for group, value in (("near", 0.8 + i / 100), ("far", 0.9 + i / 100)):
            rows.append({"repeat": 0, "scenario": OOD_GROUP, "test_set": group, "group": "", "input": inp,
                         "classifier": "threshold", "accuracy": 0.5, "auroc": value, "aupr_wrong_positive": 0.5,
                         "aupr_correct_positive": 0.5, "fpr_at_95tpr_correct_positive": 0.5,
                         "fpr_at_95tpr_wrong_positive": 0.5})
    return summarize_results(pd.DataFrame(rows))


def test_the_published_table_appears_only_for_the_protocol_on_the_real_archives():
    assert protocol_status(metas(), "cifar10", PROTOCOL_GROUPS) == (True, "")
    text = "\n".join(reference_section(protocol_summary(), metas(), "cifar10", PROTOCOL_GROUPS, 0.9412, [],
                                       {"cifar10": 500}))
    assert "| MSP | `softmax/max_prob` | 80.00 ± 0.00 | 88.03 | 90.00 ± 0.00 | 90.73 |" in text
    assert "| GradNorm | `baseline/gradnorm` | 89.00 ± 0.00 | 54.90 | 99.00 ± 0.00 | 57.55 |" in text
    assert "gradmeta's CNN 94.12 %" in text and "OpenOOD v1.5 95.06 %" in text
    stand_in = metas(lambda c: "synthetic" if c in ("svhn", "tin") else "archive")
    text = "\n".join(reference_section(protocol_summary(), stand_in, "cifar10", PROTOCOL_GROUPS, 0.9, [], {}))
    assert "do not apply" in text and "`tin`, `svhn` are not read from the real archives" in text
    assert "88.03" not in text and "95.06" not in text
    other = {**PROTOCOL_GROUPS, "near": ("cifar100",)}
    assert protocol_status(metas(), "cifar10", other)[0] is False
    assert reference_section(protocol_summary(), metas(), "cifar10", {"mine": ("svhn",)}, 0.9, [], {}) == []


def test_the_groups_table_has_every_detector_and_every_meta_classifier():
    from gradmeta.evaluation.groups import group_rows

    rows = group_rows(["softmax/entropy", "grad/fc.weight/l2", "detector/knn", "detector/vim"], ["softmax/entropy"],
                      ["gradient", "all"], ("logistic", "xgboost"))
    assert rows == [("softmax/entropy", "threshold"), ("detector/knn", "threshold"), ("detector/vim", "threshold"),
                    ("gradient", "logistic"), ("gradient", "xgboost"), ("all", "logistic"), ("all", "xgboost")]
