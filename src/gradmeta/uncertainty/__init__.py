"""Uncertainty metrics: softmax metrics and exact per-sample gradient statistics."""

from gradmeta.uncertainty.gradients import (
    ALL_STATISTICS,
    PAPER_STATISTICS,
    gradient_statistics,
)
from gradmeta.uncertainty.softmax import SOFTMAX_METRICS, softmax_metrics

__all__ = ["ALL_STATISTICS", "PAPER_STATISTICS", "SOFTMAX_METRICS", "gradient_statistics", "softmax_metrics"]
