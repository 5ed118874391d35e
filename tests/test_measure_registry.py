"""A new measure is one file and its test: a measure registered inside this test module reaches the library's
``gradmeta.measure_all``, the evaluate stage's scoring, summary and ``metrics/measures.csv``. Reference:
the value computed by hand with NumPy."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import gradmeta
from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.measures import MEASURE_REGISTRY, measure_names, register_measure
from gradmeta.evaluation.report import measures_csv
from gradmeta.evaluation.scoring import score_all
from gradmeta.evaluation.summary import summarize_results
from gradmeta.meta import MetaConfig, fit_all


def top_decile_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """By hand: the share of correct rows among the tenth of rows with the highest scores."""
    top = np.argsort(-scores, kind="stable")[: max(1, len(scores) // 10)]
    return float(target[top].mean())


@pytest.fixture
def toy():
    @register_measure("toy_top_decile", "share of correct rows among the 10% highest scores (correct positive)")
    def toy_top_decile(ranking):
        return top_decile_precision(ranking.scores, ranking.target)

    yield toy_top_decile
    MEASURE_REGISTRY.pop("toy_top_decile")


def test_the_toy_measure_reaches_the_library_and_the_evaluate_stages_tables(toy):
    rng = np.random.default_rng(0)
    target = (rng.random(200) > 0.3).astype(int)
    scores = target + rng.normal(0, 0.8, 200)
    got = gradmeta.measure_all(scores, target)
    assert list(got)[-1] == "toy_top_decile" and measure_names()[-1] == "toy_top_decile"
    assert got["toy_top_decile"] == top_decile_precision(scores, target)

    frames = {}
    for concept, n in (("digits", 200), ("noise", 60)):
        correct = rng.random(n) >= 0.25 if concept == "digits" else np.zeros(n, dtype=bool)
        f = pd.DataFrame({"concept": concept, "index": np.arange(n), "label": 0, "pred": 0, "correct": correct})
        f["softmax/entropy"] = (np.where(correct, 0.0, 1.5) + rng.normal(0, 0.5, n)).astype(np.float32)
        frames[concept] = f
    cfg = MetaConfig(repeats=2, known_concept="digits", unknown_concepts=("noise",), classifiers=("logistic",),
                     single_metrics=("softmax/entropy",), feature_sets={"softmax": ("softmax/*",)},
                     known_unknowns=("noise",))
    results, _ = score_all(frames, fit_all(frames, cfg, {}))
    assert "toy_top_decile" in results.columns
    summary = summarize_results(results)
    csv = pd.read_csv(io.StringIO(measures_csv(summary)))
    assert {"toy_top_decile_mean", "toy_top_decile_std"} <= set(csv.columns)
    per_repeat = results.groupby(["scenario", "test_set", "group", "input", "classifier"], sort=False)["toy_top_decile"]
    np.testing.assert_allclose(csv["toy_top_decile_mean"], per_repeat.mean().to_numpy(), atol=5e-7)


def test_a_taken_name_is_refused(toy):
    with pytest.raises(GradmetaError, match="measure 'auroc' is already registered"):
        register_measure("auroc", "another")(lambda ranking: 0.0)
