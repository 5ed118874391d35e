"""Meta classification: estimators (scikit-learn contract), the ``meta`` params, scenarios and
splits, fitting every scenario, and saving/loading the fitted models."""

from gradmeta.meta.classifiers import (
    THRESHOLD,
    LogisticMetaClassifier,
    SignedLog,
    SingleMetricClassifier,
    ThresholdedClassifier,
    XGBoostMetaClassifier,
    best_threshold,
)
from gradmeta.meta.config import CLASSIFIERS, MetaConfig
from gradmeta.meta.fitting import FittedMeta, fit_all
from gradmeta.meta.inputs import Inputs, resolve_inputs
from gradmeta.meta.persistence import load_fitted, save_fitted

__all__ = ["CLASSIFIERS", "THRESHOLD", "FittedMeta", "Inputs", "LogisticMetaClassifier", "MetaConfig", "SignedLog",
           "SingleMetricClassifier", "ThresholdedClassifier", "XGBoostMetaClassifier", "best_threshold", "fit_all",
           "load_fitted", "resolve_inputs", "save_fitted"]
