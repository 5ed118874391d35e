import logging

import numpy as np
import pandas as pd
import pytest

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.claims import claim_a, claim_b, claim_c, claim_d
from gradmeta.evaluation.scoring import score_all
from gradmeta.evaluation.summary import summarize_results
from gradmeta.features import metric_columns
from gradmeta.meta import (
    LogisticMetaClassifier,
    MetaConfig,
    SingleMetricClassifier,
    XGBoostMetaClassifier,
    fit_all,
    resolve_inputs,
)
from gradmeta.meta.scenarios import evaluations, fit_sets, make_splits, split_concept

UNKNOWNS = ["letters", "omniglot", "cifar10", "noise"]


def frame(concept, n, rng, wrong_rate=0.2):
    correct = rng.random(n) >= wrong_rate if concept == "digits" else np.zeros(n, dtype=bool)
    f = pd.DataFrame({"concept": concept, "index": np.arange(n), "label": 0, "pred": 0, "correct": correct})
    shift = np.where(correct, 0.0, 2.0)  # wrong rows have larger values: separable-ish
    f["softmax/entropy"] = (shift + rng.normal(0, 0.5, n)).astype(np.float32)
    f["grad/fc.weight/l2"] = np.exp(shift + rng.normal(0, 0.5, n)).astype(np.float32)
    f["grad/fc.bias/max"] = rng.normal(0, 1, n).astype(np.float32)  # pure noise
    f["baseline/gradnorm"] = rng.normal(0, 1, n).astype(np.float32)
    return f


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    return {"digits": frame("digits", 300, rng), **{c: frame(c, 80, rng) for c in UNKNOWNS}}


def test_splits_are_disjoint_stratified_reproducible(frames):
    s1 = make_splits(frames, 0.5, seed=3, known="digits")
    s2 = make_splits(frames, 0.5, seed=3, known="digits")
    s3 = make_splits(frames, 0.5, seed=4, known="digits")
    for c, split in s1.items():
        assert set(split.train).isdisjoint(split.test)
        assert sorted([*split.train, *split.test]) == list(range(len(frames[c])))
        np.testing.assert_array_equal(split.test, s2[c].test)
    assert not np.array_equal(s1["digits"].test, s3["digits"].test)
    correct = frames["digits"]["correct"].to_numpy()
    rate = correct.mean()
    for part in (s1["digits"].train, s1["digits"].test):
        assert abs(correct[part].mean() - rate) <= 1 / len(part) + 1e-9


def test_scenario_rows(frames):
    splits = make_splits(frames, 0.5, seed=0, known="digits")
    fits = fit_sets("digits", UNKNOWNS, "leave_one_out", splits)
    assert set(fits) == {"known", "all_seen", *(f"without_{c}" for c in UNKNOWNS)}
    assert [c for c, _ in fits["without_cifar10"].parts] == ["digits", "letters", "omniglot", "noise"]
    evs = evaluations(frames, "digits", UNKNOWNS, "leave_one_out", splits)
    letters_unknown = next(e for e in evs if e.scenario == "unknown" and e.test_set == "letters")
    known_part = dict(letters_unknown.rows.parts)["digits"]
    assert frames["digits"]["correct"].to_numpy()[known_part].all()  # known-correct rows only
    unseen = next(e for e in evs if e.scenario == "known_unknowns" and e.test_set == "noise" and e.group == "unseen")
    assert unseen.fit == "without_noise"
    listed = evaluations(frames, "digits", UNKNOWNS, ("letters",), splits)
    groups = {e.test_set: e.group for e in listed if e.scenario == "known_unknowns" and e.test_set != "pooled"}
    assert groups == {"letters": "seen", "omniglot": "unseen", "cifar10": "unseen", "noise": "unseen"}


@pytest.mark.parametrize("make", [lambda: LogisticMetaClassifier(), lambda: XGBoostMetaClassifier(n_estimators=30, n_jobs=1)])
def test_classifiers_beat_a_constant_predictor(make):
    rng = np.random.default_rng(1)
    y = (rng.random(600) < 0.7).astype(int)
    X = np.column_stack([y * 2.0 + rng.normal(0, 0.6, 600), rng.normal(0, 1, 600)])
    model = make().fit(X[:300], y[:300])
    accuracy = (model.predict(X[300:]) == y[300:]).mean()
    constant = max(y[300:].mean(), 1 - y[300:].mean())
    assert accuracy > constant + 0.15
    assert set(model.predict(X[300:])) == {0, 1}  # both outcomes predicted, not a constant


def test_single_metric_learns_orientation():
    y = np.array([1, 1, 1, 0, 0, 0])
    entropy_like = np.array([[0.1], [0.2], [0.3], [0.9], [1.0], [1.1]])  # high = wrong
    model = SingleMetricClassifier().fit(entropy_like, y)
    assert model.sign_ == -1.0
    np.testing.assert_array_equal(model.predict(entropy_like), y)


def test_fit_and_score_end_to_end(frames):
    cfg = MetaConfig(repeats=2, classifiers=("logistic",), single_metrics=("softmax/entropy", "grad/*"),
                     feature_sets={"gradient": ("grad/*",)}, classifier_params={"xgboost": {"n_estimators": 5, "max_depth": 2,
                                                                       "learning_rate": 0.3, "subsample": 1.0, "n_jobs": 1}})
    fitted = fit_all(frames, cfg, {})
    results, _ = score_all(frames, fitted)
    summary = summarize_results(results)
    mis = summary[(summary.scenario == "misclassification") & (summary.input == "grad/fc.weight/l2")].iloc[0]
    noise = summary[(summary.scenario == "misclassification") & (summary.input == "grad/fc.bias/max")].iloc[0]
    assert mis.auroc_mean > 0.9 and noise.auroc_mean < 0.7
    assert set(summary.scenario) == {"misclassification", "unknown", "known_unknowns"}


def test_parallel_fits_equal_one_at_a_time_and_a_nonconverged_fit_is_logged(frames, caplog):
    xgb = {"n_estimators": 8, "max_depth": 2, "learning_rate": 0.3, "subsample": 0.8, "n_jobs": 1}
    sets = {"gradient": ("grad/*",), "all": ("softmax/*", "grad/*", "baseline/*")}
    single = ("softmax/entropy", "grad/*")
    serial = fit_all(frames, MetaConfig(repeats=2, single_metrics=single, feature_sets=sets,
                                        classifier_params={"xgboost": xgb}, n_jobs=1), {})
    parallel = fit_all(frames, MetaConfig(repeats=2, single_metrics=single, feature_sets=sets,
                                          classifier_params={"xgboost": xgb}, n_jobs=2),
                       {})
    X = frames["noise"][metric_columns(frames["digits"])].to_numpy(np.float64)
    for one, other in zip(serial.models, parallel.models, strict=True):
        assert list(one) == list(other)  # same models, same order
        for key, model in one.items():
            cols = [metric_columns(frames["digits"]).index(c) for c in serial.inputs.columns_of(key[1])]
            np.testing.assert_array_equal(model.score_samples(X[:, cols]), other[key].score_samples(X[:, cols]))
            assert model.threshold_ == other[key].threshold_
    # one Newton step cannot reach the 1e-10 tolerance: the stage's log says which fit, not a bare warning
    cfg = MetaConfig(repeats=1, classifiers=("logistic",), single_metrics=("softmax/entropy",), feature_sets=sets,
                     classifier_params={"logistic": {"C": 1.0, "max_iter": 1, "signed_log": True}}, n_jobs=2)
    with caplog.at_level("WARNING"):
        fitted = fit_all(frames, cfg, {}, logging.getLogger("test-meta"))
    assert not fitted.models[0][("known", "gradient", "logistic")].converged_
    assert "repeat 0, fit known, gradient/logistic: logistic regression did not converge in 1 iterations" in caplog.text


def test_bad_params_and_inputs(frames):
    with pytest.raises(GradmetaError, match="meta.unknown_concepts must be a list of names from"):
        MetaConfig.from_params({"meta": {"unknown_concepts": ["letters", "shapes"]}})
    with pytest.raises(GradmetaError, match="meta.classifiers must be a list of names from logistic, xgboost"):
        MetaConfig.from_params({"meta": {"classifiers": ["svm"]}})
    with pytest.raises(GradmetaError, match="meta.known_unknowns must be 'leave_one_out' or a list"):
        MetaConfig.from_params({"meta": {"known_unknowns": ["shapes"]}})
    with pytest.raises(GradmetaError, match="meta.n_jobs must be a positive integer and <= 1024, got 0"):
        MetaConfig.from_params({"meta": {"n_jobs": 0}})
    cfg = MetaConfig.from_params({"meta": {"single_metrics": ["softmax/entropy"], "feature_sets": {"odd": ["curvature/*"]}}})
    with pytest.raises(GradmetaError, match="meta.feature_sets.odd: 'curvature/\\*' matches no feature column"):
        resolve_inputs(cfg, metric_columns(frames["digits"]))
    all_correct = dict(frames)
    all_correct["digits"] = frames["digits"].assign(correct=True)
    with pytest.raises(GradmetaError, match="misclassification scenario is empty"):
        fit_all(all_correct, MetaConfig(repeats=1), {})
    empty = dict(frames)
    empty["noise"] = frames["noise"].iloc[:0]
    with pytest.raises(GradmetaError, match="concept 'noise' are empty"):
        fit_all(empty, MetaConfig(repeats=1), {})


def test_split_needs_rows(frames):
    with pytest.raises(GradmetaError, match="needs at least 2 rows"):
        split_concept(frames["noise"].iloc[:1], 0.5, 0, False)


# ----------------------------------------------------------------------------------- claims
def table(rows):
    """A summary table from (scenario, test_set, group, input, classifier, auroc, auroc_std, acc, acc_std)."""
    return pd.DataFrame([dict(zip(["scenario", "test_set", "group", "input", "classifier", "auroc_mean", "auroc_std",
                                   "accuracy_mean", "accuracy_std"], r)) for r in rows])


def mis(inp, auroc, acc=0.95, clf="threshold", std=0.01):
    return ("misclassification", "digits", "", inp, clf, auroc, std, acc, 0.005)


def test_claim_a_holds_and_fails():
    base = [mis("softmax/entropy", 0.94)]
    holds = table(base + [mis("grad/a/l1", 0.935), mis("grad/b/l2", 0.95), mis("grad/c/max", 0.80)])
    assert claim_a(holds, "digits").holds is True
    fails = table(base + [mis("grad/a/l1", 0.925), mis("grad/b/l2", 0.95), mis("grad/c/max", 0.80)])
    assert claim_a(fails, "digits").holds is False  # only one within one std
    low_acc = table(base + [mis("grad/a/l1", 0.95, acc=0.90), mis("grad/b/l2", 0.95)])
    assert claim_a(low_acc, "digits").holds is False
    assert claim_a(table([mis("grad/a/l1", 0.9)]), "digits").holds is None


def unk(test_set, inp, clf, auroc, std=0.005, scenario="unknown", group=""):
    return (scenario, test_set, group, inp, clf, auroc, std, 0.8, 0.01)


def test_claim_b():
    concepts = ["letters", "noise", "cifar10"]
    ent = [unk(c, "softmax/entropy", "threshold", a) for c, a in zip([*concepts, "pooled"], [0.8, 0.9, 0.85, 0.86])]
    def combined(aurocs):
        return [unk(c, "entropy+gradient", "logistic", a) for c, a in zip([*concepts, "pooled"], aurocs)]
    better = table(ent + combined([0.85, 0.95, 0.8, 0.9]))
    assert claim_b(better, concepts, "logistic").holds is True
    worse_pooled = table(ent + combined([0.85, 0.95, 0.8, 0.85]))
    assert claim_b(worse_pooled, concepts, "logistic").holds is False
    minority = table(ent + combined([0.85, 0.85, 0.8, 0.9]))
    assert claim_b(minority, concepts, "logistic").holds is False


def test_claim_c():
    concepts = ["letters", "noise"]
    uneven = table([unk("letters", "entropy+gradient", "logistic", 0.8), unk("noise", "entropy+gradient", "logistic", 0.99)])
    assert claim_c(uneven, concepts, "logistic").holds is True
    even = table([unk("letters", "entropy+gradient", "logistic", 0.95), unk("noise", "entropy+gradient", "logistic", 0.96)])
    assert claim_c(even, concepts, "logistic").holds is False
    noisy = table([unk("letters", "entropy+gradient", "logistic", 0.8, std=0.1),
                   unk("noise", "entropy+gradient", "logistic", 0.95)])
    assert claim_c(noisy, concepts, "logistic").holds is False  # spread within twice the std


def test_claim_d():
    def rows(seen_gain, unseen_gain, std=0.005):
        out = []
        for c in ("cifar10", "noise"):
            out.append(unk(c, "entropy+gradient", "logistic", 0.9, std))
            out.append(unk(c, "entropy+gradient", "logistic", 0.9 + seen_gain, std, "known_unknowns", "seen"))
            out.append(unk(c, "entropy+gradient", "logistic", 0.9 + unseen_gain, std, "known_unknowns", "unseen"))
        return table(out)
    verdict, note = claim_d(rows(0.05, -0.01), ["cifar10", "noise"], "logistic")
    assert verdict.holds is True and "does not hold" in note
    verdict, _ = claim_d(rows(0.005, 0.05), ["cifar10", "noise"], "logistic")
    assert verdict.holds is False  # below the margin
    verdict, _ = claim_d(rows(0.03, 0.0, std=0.02), ["cifar10", "noise"], "logistic")
    assert verdict.holds is False  # within the spread


def test_the_meta_fits_log_a_line_per_fit_group(frames, caplog):
    cfg = MetaConfig(repeats=2, classifiers=("logistic",), single_metrics=("softmax/entropy",),
                     feature_sets={"gradient": ("grad/*",)})
    with caplog.at_level(logging.INFO, logger="gradmeta.test"):
        fit_all(frames, cfg, {}, logging.getLogger("gradmeta.test"))
    lines = [r.getMessage() for r in caplog.records if "fit groups done" in r.getMessage()]
    groups = 1 + len(UNKNOWNS) + 1  # known, without_<c> for each unknown, all_seen
    assert len(lines) == 2 * groups
    assert lines[0].startswith("repeat 1/2, fit known: 2 models in ")  # entropy's threshold and gradient/logistic
    assert lines[-1].endswith(f"({2 * groups} of {2 * groups} fit groups done)")


@pytest.mark.parametrize("terminal", [True, False])
def test_the_meta_fits_show_a_bar_on_a_terminal_only(frames, stderr_on, terminal):
    err = stderr_on(terminal)
    cfg = MetaConfig(repeats=2, classifiers=("logistic",), single_metrics=("softmax/entropy",),
                     feature_sets={"gradient": ("grad/*",)})
    fit_all(frames, cfg, {}, None)
    groups = 2 * (1 + len(UNKNOWNS) + 1)
    shown = err.getvalue()
    assert ("meta fits:" in shown and f"/{groups} [" in shown) is terminal, shown  # tqdm redraws at most every 0.1 s
    assert ("meta fits" in shown) is terminal
