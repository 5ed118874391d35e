"""What the rejection scenario costs the meta and evaluate stages' work, in one process.

On the default run's features (``data/features``, from ``dvc repro``) and params.yaml, pinned as the
stages run: rounds alternate

- ``before``: the features without what the rejection scenario added (the ``prob/<c>``,
  ``detector/doctor_*`` and ``detector/sirc`` columns): ``fit_all`` (every meta classifier) and
  ``score_all`` + ``summarize_results`` (the evaluate stage's scoring);
- ``after``: every column: ``fit_all`` (now with REL-U and the new single scores), ``score_all``,
  ``summarize_results`` and ``run_rejection`` (the rejection scenario scored and summarised).

Printed: each side's seconds per round, the median of the per-round ratios after / before, and the
rejection scoring's own seconds.

    python benchmarks/rejection_cost.py [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import click

ADDED = ("prob/", "detector/doctor_", "detector/sirc")


@click.command()
@click.option("--rounds", default=2, show_default=True)
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--features-dir", default="data/features", show_default=True)
@click.option("--json", "json_path", default=None)
def main(rounds: int, params_path: str, features_dir: str, json_path: str | None) -> None:
    from gradmeta.core.process import prepare_process

    prepare_process()
    from gradmeta.core.params import load_params
    from gradmeta.evaluation.run import EvaluateConfig, run_rejection
    from gradmeta.evaluation.scoring import score_all
    from gradmeta.evaluation.summary import summarize_results
    from gradmeta.meta import MetaConfig, fit_all
    from gradmeta.meta.scenarios import load_concept_features

    params = load_params(params_path)
    cfg = MetaConfig.from_params(params)
    frames, _ = load_concept_features(features_dir, (cfg.known_concept, *cfg.unknown_concepts))
    before = {c: f[[k for k in f.columns if not k.startswith(ADDED)]] for c, f in frames.items()}
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    rejection_seconds = []
    for _ in range(rounds):
        for side, data in (("before", before), ("after", frames)):
            start = time.perf_counter()
            fitted = fit_all(data, cfg, {})
            summarize_results(score_all(data, fitted)[0])
            if side == "after":
                mid = time.perf_counter()
                run_rejection(EvaluateConfig.from_params(params, fitted), fitted, data)
                rejection_seconds.append(time.perf_counter() - mid)
            seconds[side].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(seconds["after"], seconds["before"], strict=True)]
    out = {"rounds": rounds, "seconds": {k: [round(s, 2) for s in v] for k, v in seconds.items()},
           "rejection_scoring_seconds": [round(s, 2) for s in rejection_seconds],
           "ratio_after_before_median": round(statistics.median(ratios), 4)}
    text = json.dumps(out, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")


if __name__ == "__main__":
    main()
