"""gradmeta: classification uncertainty of neural networks from gradient information.

Reproduces and extends Oberdiek, Rottmann & Gottschalk (ANNPR 2018, arXiv 1805.08440).

The library's face, for your own model and tensors (README, "Use it on your own model"):

- :func:`metric_table`: model + float tensor -> one row per image: softmax metrics, exact per-sample
  gradient statistics, GradNorm, further gradient targets, fitted detectors' scores;
- :func:`gradient_statistics`, :func:`softmax_metrics`: the two metric families on their own;
- the detectors :class:`Mahalanobis`, :class:`MahalanobisPlusPlus`, :class:`RelativeMahalanobis`,
  :class:`KNN`, :class:`GradKNN`, :class:`GradPCA`, :class:`ViM`, :class:`ReAct`, :class:`SIRC`
  (``fit(model, images, labels)``, ``score(model, images)``), :class:`FeatureNorm`, :class:`ExGrad`,
  :class:`DOCTOR`, :class:`ODIN`, :class:`MCDropout` and :class:`GradNorm`;
- the meta classifiers :class:`LogisticMetaClassifier`, :class:`XGBoostMetaClassifier` (scikit-learn
  estimators) and :func:`measure_all` (AUROC, AUPR, accuracy, FPR at 95% TPR of scores against a target).

Names load on first use (``import gradmeta`` imports neither torch nor scikit-learn), and importing
gradmeta changes nothing in the process: the OpenMP policy and the CPU kernel pins are set by the entry
points (stage scripts, the ``gradmeta`` command) through :func:`gradmeta.core.process.prepare_process`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gradmeta.core.errors import GradmetaError

__version__ = "0.1.0"

_PUBLIC = {  # name -> the module that defines it
    "metric_table": "gradmeta.uncertainty.table",
    "gradient_statistics": "gradmeta.uncertainty.gradients",
    "ALL_STATISTICS": "gradmeta.uncertainty.gradients",
    "PAPER_STATISTICS": "gradmeta.uncertainty.gradients",
    "softmax_metrics": "gradmeta.uncertainty.softmax",
    "Mahalanobis": "gradmeta.uncertainty.detectors",
    "MahalanobisPlusPlus": "gradmeta.uncertainty.detectors",
    "RelativeMahalanobis": "gradmeta.uncertainty.detectors",
    "FeatureNorm": "gradmeta.uncertainty.detectors",
    "ExGrad": "gradmeta.uncertainty.detectors",
    "DOCTOR": "gradmeta.uncertainty.detectors",
    "SIRC": "gradmeta.uncertainty.detectors",
    "GradKNN": "gradmeta.uncertainty.detectors",
    "GradPCA": "gradmeta.uncertainty.detectors",
    "KNN": "gradmeta.uncertainty.detectors",
    "ViM": "gradmeta.uncertainty.detectors",
    "ReAct": "gradmeta.uncertainty.detectors",
    "ODIN": "gradmeta.uncertainty.detectors",
    "MCDropout": "gradmeta.uncertainty.detectors",
    "GradNorm": "gradmeta.uncertainty.detectors",
    "LogisticMetaClassifier": "gradmeta.meta.classifiers",
    "XGBoostMetaClassifier": "gradmeta.meta.classifiers",
    "measure_all": "gradmeta.evaluation.measures",
}

__all__ = ["GradmetaError", "__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gradmeta' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
