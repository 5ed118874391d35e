"""Uncertainty metrics of a classifier's predictions: softmax metrics, exact per-sample gradient
statistics (:mod:`.gradients`), the GradNorm baseline, the field's detectors (:mod:`.detectors`), and
the features table they make.

Names load on first use: importing ``gradmeta.uncertainty.detectors`` (the detectors stage) runs neither
the gradient engine nor its rules, so editing a rule does not rerun that stage.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {  # name -> the module that defines it
    "ALL_STATISTICS": "gradmeta.uncertainty.gradients",
    "PAPER_STATISTICS": "gradmeta.uncertainty.gradients",
    "gradient_statistics": "gradmeta.uncertainty.gradients",
    "iterate_chunks": "gradmeta.uncertainty.gradients",
    "gradnorm_scores": "gradmeta.uncertainty.detectors.gradnorm",
    "SOFTMAX_METRICS": "gradmeta.uncertainty.softmax",
    "softmax_metrics": "gradmeta.uncertainty.softmax",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gradmeta.uncertainty' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
