"""Evaluation: measures and their conventions, scoring, the summary table, the paper's claims, the
report, plots, and :func:`run` / :func:`write` (the evaluate stage's work)."""

from gradmeta.evaluation.measures import measure_all, measure_names, register_measure
from gradmeta.evaluation.run import EvaluateConfig, EvaluateResult, run, write
from gradmeta.evaluation.summary import summarize_results, summary_row

__all__ = ["EvaluateConfig", "EvaluateResult", "measure_all", "measure_names", "register_measure", "run", "summarize_results",
           "summary_row", "write"]
