"""The meta stage's work: :func:`run` fits every meta classifier of every scenario and repeat
(:mod:`.fitting`); :func:`write` saves them without pickle (:mod:`.persistence`)."""

from __future__ import annotations

import logging

import pandas as pd

from gradmeta.meta.config import MetaConfig
from gradmeta.meta.fitting import FittedMeta, fit_all
from gradmeta.meta.persistence import save_fitted


def run(cfg: MetaConfig, frames: dict[str, pd.DataFrame], sources: dict[str, str],
        log: logging.Logger | None = None) -> FittedMeta:
    """Every meta classifier fitted on the concepts' features tables ``frames`` (``sources``: each
    concept's data source, recorded with them)."""
    return fit_all(frames, cfg, sources, log)


def write(fitted: FittedMeta, out_path: str) -> None:
    """``models/meta/meta.npz`` (same fit, same bytes), atomically."""
    save_fitted(out_path, fitted)
