"""DVC stage `meta`: split rows per scenario and repeat, fit every meta classifier, save them."""

from __future__ import annotations

from gradmeta.core.process import prepare_process

prepare_process()  # before numpy, torch or XGBoost load: OpenMP policy, CPU kernel pins

import time

import click

from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.params import load_params
from gradmeta.features import shard_count
from gradmeta.meta import MetaConfig
from gradmeta.meta.scenarios import load_concept_features
from gradmeta.meta.stage import run, write


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--features-dir", default="data/features", show_default=True)
@click.option("--out", "out_path", default="models/meta/meta.npz", show_default=True)
@reports_errors
def main(params_path: str, features_dir: str, out_path: str) -> None:
    log = setup_logging("meta")
    params = load_params(params_path)
    cfg = MetaConfig.from_params(params)
    frames, metas = load_concept_features(features_dir, (cfg.known_concept, *cfg.unknown_concepts), log,
                                          shards=shard_count(params))
    sources = {c: str(m.get("source", "?")) for c, m in metas.items()}
    start = time.perf_counter()
    fitted = run(cfg, frames, sources, log)
    n_models = sum(len(m) for m in fitted.models)
    log.info("%d meta classifiers over %d repeats in %.1f s (data: %s)", n_models, cfg.repeats,
             time.perf_counter() - start, ", ".join(sorted({str(m.get("kind", "?")) for m in metas.values()})))
    write(fitted, out_path)


if __name__ == "__main__":
    main()
