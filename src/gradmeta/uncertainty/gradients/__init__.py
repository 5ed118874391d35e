"""Exact per-sample gradient statistics: moment algebra, per-layer rules, planning, the chunk engine."""

from gradmeta.uncertainty.gradients.engine import (
    DEFAULT_CHUNK_SIZE,
    ChunkResult,
    gradient_statistics,
    iterate_chunks,
    iterate_targets,
)
from gradmeta.uncertainty.gradients.moments import (
    ALL_STATISTICS,
    OPTIONAL_STATISTICS,
    PAPER_STATISTICS,
    validate_statistics,
)
from gradmeta.uncertainty.gradients.plan import Plan, plan_layers
from gradmeta.uncertainty.gradients.rules import register_rule
from gradmeta.uncertainty.gradients.targets import TARGETS

__all__ = ["ALL_STATISTICS", "DEFAULT_CHUNK_SIZE", "OPTIONAL_STATISTICS", "PAPER_STATISTICS", "TARGETS", "ChunkResult", "Plan",
           "gradient_statistics", "iterate_chunks", "iterate_targets", "plan_layers", "register_rule", "validate_statistics"]
