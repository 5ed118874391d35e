"""Each score judged by its own sign: a detector's or baseline's single-score classifier keeps the
documented sign (higher = in-distribution) even where meta-train's AUROC would flip it; a raw metric's
orientation is still learned on meta-train. Checked against scikit-learn's AUROC."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gradmeta.meta.classifiers import THRESHOLD, SingleMetricClassifier, documented_sign
from gradmeta.meta.config import MetaConfig


@pytest.fixture
def reversed_rows():
    """A score that is *lower* for the positive class on these rows (AUROC < 0.5)."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(60, int), np.zeros(40, int)]
    x = np.r_[rng.normal(0.0, 1.0, 60), rng.normal(0.8, 1.0, 40)]
    return x[:, None], y


def test_a_documented_sign_is_kept_where_meta_train_would_flip_it(reversed_rows):
    X, y = reversed_rows
    assert roc_auc_score(y, X[:, 0]) < 0.5
    fixed = SingleMetricClassifier(sign=1.0).fit(X, y)
    assert fixed.sign_ == 1.0
    np.testing.assert_array_equal(fixed.score_samples(X), X[:, 0])
    assert roc_auc_score(y, fixed.score_samples(X)) == pytest.approx(roc_auc_score(y, X[:, 0]))
    learned = SingleMetricClassifier().fit(X, y)
    assert learned.sign_ == -1.0
    assert roc_auc_score(y, learned.score_samples(X)) == pytest.approx(1.0 - roc_auc_score(y, X[:, 0]))
    with pytest.raises(ValueError, match="sign must be 1, -1 or None"):
        SingleMetricClassifier(sign=0.5).fit(X, y)


def test_the_threshold_still_comes_from_the_training_rows(reversed_rows):
    X, y = reversed_rows
    fixed = SingleMetricClassifier(sign=1.0).fit(X, y)
    accepted = X[:, 0] >= fixed.threshold_
    # the best cut of an anti-correlated score is to accept everything (60 of 100 positive)
    assert (accepted == y).mean() >= 0.6


def test_which_columns_keep_their_sign():
    assert documented_sign("detector/mahalanobis") == documented_sign("baseline/gradnorm") == 1.0
    assert documented_sign("softmax/entropy") is None and documented_sign("grad/all/l2") is None
    assert documented_sign("factor/fc2/input_l2") is None and documented_sign("grad_kl_uniform/all/l1") is None
    cfg = MetaConfig()
    assert cfg.make(THRESHOLD, 0, "detector/mahalanobis").sign == 1.0
    assert cfg.make(THRESHOLD, 0, "softmax/entropy").sign is None


def test_the_sign_survives_saving(reversed_rows):
    X, y = reversed_rows
    fitted = SingleMetricClassifier(sign=1.0).fit(X, y)
    scalars, arrays = fitted.state()

    class Read:
        def array(self, name, kind, ndim, length=None):
            return arrays[name]

        def where(self, name):
            return name

    restored = SingleMetricClassifier.from_state(scalars, Read())
    assert restored.sign == 1.0 and restored.sign_ == 1.0
    np.testing.assert_array_equal(restored.score_samples(X), fitted.score_samples(X))
