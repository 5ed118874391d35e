"""The meta classifiers keep scikit-learn's estimator contract (its own checks, clone, is_classifier)."""

import json

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradmeta.meta import LogisticMetaClassifier, SingleMetricClassifier, XGBoostMetaClassifier
from gradmeta.meta.classifiers import classifier_kind

ESTIMATORS = [LogisticMetaClassifier(), XGBoostMetaClassifier(n_estimators=20, n_jobs=1),
              SingleMetricClassifier(column=0)]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS + [SingleMetricClassifier()], ids=lambda e: type(e).__name__)
def test_is_a_classifier_that_clones_and_refuses_use_before_fit(estimator):
    assert is_classifier(estimator)
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params() == estimator.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(np.zeros((2, 1)))
    with pytest.raises(NotFittedError):
        copy.decision_function(np.zeros((2, 1)))


def separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    return np.column_stack([y * 3.0 + rng.normal(0, 1, n)]), y


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_decision_function_is_the_score_minus_the_threshold(estimator):
    X, y = separable()
    model = clone(estimator).fit(X, y)
    scores = model.score_samples(X)
    np.testing.assert_array_equal(model.decision_function(X), scores - model.threshold_)
    np.testing.assert_array_equal(model.predict(X), np.where(scores >= model.threshold_, 1, 0))


def test_string_labels_keep_their_classes_and_the_larger_one_is_positive():
    X, y = separable()
    words = np.where(y == 1, "right", "odd")  # sorted: ['odd', 'right'] -> 'right' is classes_[1]
    model = SingleMetricClassifier().fit(X, words)
    assert list(model.classes_) == ["odd", "right"]
    assert model.sign_ == 1.0  # larger metric = 'right'
    np.testing.assert_array_equal(model.predict(X), np.where(X[:, 0] >= model.threshold_, "right", "odd"))


@pytest.mark.parametrize("estimator, message", [
    (LogisticMetaClassifier(C=0.0), "The 'C' parameter of LogisticMetaClassifier must be a float in the range"),
    (LogisticMetaClassifier(max_iter=0), "The 'max_iter' parameter of LogisticMetaClassifier must be an int"),
    (XGBoostMetaClassifier(subsample=1.5), "The 'subsample' parameter of XGBoostMetaClassifier must be a float"),
    (SingleMetricClassifier(column=-1), "The 'column' parameter of SingleMetricClassifier must be"),
])
def test_constructor_arguments_are_validated_at_fit_with_scikit_learn_messages(estimator, message):
    X, y = separable()
    with pytest.raises(InvalidParameterError, match=message):
        estimator.fit(X, y)


def test_one_class_and_more_than_two_are_refused():
    X, y = separable()
    with pytest.raises(ValueError, match="2 classes"):
        LogisticMetaClassifier().fit(X, np.ones_like(y))
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        SingleMetricClassifier().fit(X, np.arange(len(y)) % 3)
    with pytest.raises(ValueError, match="one feature column, got 2"):
        SingleMetricClassifier().fit(np.hstack([X, X]), y)


def heavy(n=300, d=6, wrong=12, seed=0):
    """Few wrong rows among many correct ones, two informative columns of six."""
    rng = np.random.default_rng(seed)
    y = np.ones(n, dtype=int)
    y[rng.choice(n, wrong, replace=False)] = 0
    X = rng.normal(0, 1, (n, d))
    X[:, 0] += 1.5 * (y == 0)
    X[:, 1] -= 1.0 * (y == 0)
    return X, y


def test_auto_C_is_the_grid_value_with_the_lowest_out_of_fold_log_loss():
    """Reference: the same folds by hand, scikit-learn's pipeline and log_loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = heavy()
    grid = [0.001, 0.01, 0.1, 1.0, 10.0]
    folds = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=7).split(X, y))
    losses = []
    for C in grid:
        p = np.empty(len(y))
        for tr, va in folds:
            ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, solver="newton-cholesky", tol=1e-10,
                                                                     max_iter=2000))
            p[va] = ref.fit(X[tr], y[tr]).predict_proba(X[va])[:, 1]
        losses.append(log_loss(y, p))
    model = LogisticMetaClassifier(C="auto", C_grid=grid, signed_log=False, random_state=7).fit(X, y)
    assert model.C_ == grid[int(np.argmin(losses))] and model.C_selection_ == "cv"
    whole = make_pipeline(StandardScaler(), LogisticRegression(C=model.C_, solver="newton-cholesky", tol=1e-10,
                                                               max_iter=2000)).fit(X, y)
    np.testing.assert_allclose(model.score_samples(X), whole.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    fixed = LogisticMetaClassifier(C=0.5, signed_log=False).fit(X, y)
    assert (fixed.C_, fixed.C_selection_) == (0.5, "given")


def test_auto_C_with_a_single_wrong_row_takes_the_strongest_penalty():
    X, y = heavy(wrong=1)
    model = LogisticMetaClassifier(C="auto", C_grid=[1.0, 0.01, 0.1]).fit(X, y)
    assert (model.C_, model.C_selection_) == (0.01, "few rows")


def test_early_stopping_refits_with_the_rounds_found_on_a_held_out_part():
    """Reference: XGBoost's own early stopping on the same stratified split."""
    from sklearn.model_selection import train_test_split
    from xgboost import XGBClassifier

    X, y = heavy(n=400, wrong=60)
    model = XGBoostMetaClassifier(n_estimators=200, max_depth=2, learning_rate=0.3, n_jobs=1, random_state=3,
                                  early_stopping_rounds=5, validation_fraction=0.25).fit(X, y)
    tr, va = train_test_split(np.arange(len(y)), test_size=0.25, random_state=3, stratify=y)
    ref = XGBClassifier(n_estimators=200, max_depth=2, learning_rate=0.3, n_jobs=1, random_state=3,
                        tree_method="hist", eval_metric="logloss", early_stopping_rounds=5)
    ref.fit(X[tr], y[tr], eval_set=[(X[va], y[va])], verbose=False)
    assert model.n_rounds_ == ref.best_iteration + 1 < 200
    assert model.model_.get_booster().num_boosted_rounds() == model.n_rounds_  # refitted on every row
    assert XGBoostMetaClassifier(n_estimators=30, n_jobs=1).fit(X, y).n_rounds_ == 30  # off: all rounds


@pytest.mark.parametrize("group, message", [
    ({"C": "best"}, "meta.logistic.C must be a number or 'auto'"),
    ({"C_grid": []}, "meta.logistic.C_grid must be a non-empty list of numbers > 0"),
    ({"C_grid": [0.1, -1]}, "meta.logistic.C_grid must be a non-empty list of numbers > 0"),
    ({"cv_folds": 1}, "meta.logistic.cv_folds must be an integer >= 2"),
])
def test_bad_logistic_params_name_the_key(group, message):
    from gradmeta.core.errors import GradmetaError
    from gradmeta.meta import MetaConfig

    with pytest.raises(GradmetaError, match=message):
        MetaConfig.from_params({"meta": {"logistic": group}})


class DictArrays:
    """Saved arrays held in a dict, checked as the meta file's reader checks them (StateArrays)."""

    def __init__(self, arrays):
        self.arrays = arrays

    def array(self, name, kind, ndim, length=None):
        a = self.arrays[name]
        if a.dtype.kind != kind or a.ndim != ndim or (length is not None and a.shape[-1] != length):
            raise ValueError(f"array {name} is {a.dtype} {a.shape}")
        return a

    def where(self, name):
        return f"saved/{name}"


@pytest.mark.parametrize("make", [lambda: SingleMetricClassifier(column=2), lambda: LogisticMetaClassifier(C=1.0),
                                  lambda: XGBoostMetaClassifier(n_estimators=5, n_jobs=1)])
def test_state_rebuilds_a_model_that_scores_the_same_bits(make):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    y = (X[:, 2] + 0.5 * rng.standard_normal(80) > 0).astype(int)
    model = make().fit(X, y)
    scalars, arrays = model.state()
    json.dumps(scalars)  # scalars are JSON, arrays plain numbers: nothing to pickle
    assert all(a.dtype != object for a in arrays.values())
    rebuilt = classifier_kind(type(model).kind).from_state(json.loads(json.dumps(scalars)), DictArrays(arrays))
    assert type(rebuilt) is type(model)
    assert json.dumps(rebuilt.get_params()) == json.dumps(model.get_params())  # tuples come back as lists
    assert rebuilt.score_samples(X).tobytes() == model.score_samples(X).tobytes()
    assert rebuilt.threshold_ == model.threshold_ and list(rebuilt.predict(X)) == list(model.predict(X))


def test_a_damaged_state_is_refused_naming_the_array():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((40, 3)), np.r_[np.zeros(20, int), np.ones(20, int)]
    scalars, arrays = XGBoostMetaClassifier(n_estimators=3, n_jobs=1).fit(X, y).state()
    arrays["booster_ubj"] = np.frombuffer(b"not a booster", dtype=np.uint8)
    with pytest.raises(ValueError, match="array saved/booster_ubj is not an XGBoost model"):
        XGBoostMetaClassifier.from_state(scalars, DictArrays(arrays))
    scalars, arrays = LogisticMetaClassifier(C=1.0).fit(X, y).state()
    arrays["coef"] = arrays["coef"][:, :2]
    with pytest.raises(ValueError, match="array coef is float64"):
        LogisticMetaClassifier.from_state(scalars, DictArrays(arrays))
    with pytest.raises(ValueError, match="unknown meta classifier 'forest'"):
        classifier_kind("forest")
