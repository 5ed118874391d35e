"""Meta classifiers, following scikit-learn's estimator contract.

A meta classifier learns, from a row of metrics, whether the CNN's prediction is correct (target
1 = correct, 0 = wrong). Each is a binary scikit-learn classifier (``ClassifierMixin`` before
``BaseEstimator``; constructor arguments validated at ``fit`` with scikit-learn's messages;
``check_is_fitted`` before use):

- ``score_samples(X)``: the raw score, higher = more likely the positive class (``classes_[1]``,
  correct); this is what the measures rank;
- ``threshold_``: the cut chosen on the training rows (best accuracy, :func:`best_threshold`);
- ``predict(X)``: ``classes_[score >= threshold_]``; ``decision_function(X)``: ``score - threshold_``
  (positive = predicted correct, as scikit-learn expects of a binary classifier).

There is no ``predict_proba``: ``predict`` cuts at the meta-train threshold, not at probability 0.5,
so a probability whose argmax disagreed with ``predict`` would break the contract. For logistic
regression and XGBoost the score *is* the positive-class probability.

One file per classifier: :mod:`.thresholded` (the base, saving, the kinds, one metric),
:mod:`.logistic`, :mod:`.boosted` (XGBoost), :mod:`.relative` (REL-U, a rejection baseline on the class
probabilities); :mod:`.registry` (a ``meta.classifiers`` entry: its params group, declared with the
class). This package imports every file in it, so a new meta classifier is one file (and its test).
"""

import pkgutil
from importlib import import_module
from pathlib import Path

from gradmeta.meta.classifiers.boosted import XGBoostMetaClassifier
from gradmeta.meta.classifiers.logistic import (
    AUTO,
    C_GRID,
    CV_FOLDS,
    LOGISTIC_TOL,
    LogisticMetaClassifier,
    SignedLog,
    inner_folds,
    logistic_regression,
    mean_log_loss,
)
from gradmeta.meta.classifiers.registry import META_CLASSIFIERS, MetaSpec, meta_spec, register_meta_classifier
from gradmeta.meta.classifiers.relative import PROBABILITIES, REL_U, RelUClassifier
from gradmeta.meta.classifiers.thresholded import (
    THRESHOLD,
    SingleMetricClassifier,
    StateArrays,
    ThresholdedClassifier,
    best_threshold,
    classifier_kind,
    documented_sign,
)

for _info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
    import_module(f"{__name__}.{_info.name}")  # a classifier's file registers it on import

__all__ = ["AUTO", "CV_FOLDS", "C_GRID", "LOGISTIC_TOL", "META_CLASSIFIERS", "PROBABILITIES", "REL_U", "THRESHOLD",
           "LogisticMetaClassifier", "MetaSpec", "RelUClassifier", "SignedLog", "meta_spec", "register_meta_classifier",
           "SingleMetricClassifier", "StateArrays", "ThresholdedClassifier", "XGBoostMetaClassifier", "best_threshold",
           "classifier_kind", "documented_sign", "inner_folds", "logistic_regression", "mean_log_loss"]
