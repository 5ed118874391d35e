"""Uncertainty metrics of a classifier's predictions: softmax metrics, exact per-sample gradient
statistics (:mod:`.gradients`), the GradNorm baseline, and the features table they make."""

from gradmeta.uncertainty.gradients import (
    ALL_STATISTICS,
    PAPER_STATISTICS,
    gradient_statistics,
    iterate_chunks,
)
from gradmeta.uncertainty.gradnorm import gradnorm_scores
from gradmeta.uncertainty.softmax import SOFTMAX_METRICS, softmax_metrics

__all__ = ["ALL_STATISTICS", "PAPER_STATISTICS", "SOFTMAX_METRICS", "gradient_statistics", "gradnorm_scores",
           "iterate_chunks", "softmax_metrics"]
