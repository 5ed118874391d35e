"""The meta classifiers keep scikit-learn's estimator contract (its own checks, clone, is_classifier)."""

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradmeta.meta import LogisticMetaClassifier, SingleMetricClassifier, XGBoostMetaClassifier

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
    assert set(model.predict(X)) <= {"odd", "right"}


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
