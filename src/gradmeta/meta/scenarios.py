"""The three scenarios: which rows train a meta classifier and which rows test it.

Every concept's rows are split into meta-train / meta-test per repeat (stratified by correctness
for the known concept). Target: 1 = the CNN's prediction is correct, 0 = wrong; every row of an
unknown concept is wrong.

- ``misclassification``: fit ``known`` (known meta-train); test on the known meta-test rows.
- ``unknown``: fit ``known``; test per unknown concept on known-correct meta-test rows vs that
  concept's meta-test rows, and ``pooled``: all known meta-test rows + every unknown's meta-test rows.
- ``known_unknowns``: fits that add unknown concepts' meta-train rows. Leave-one-out (default):
  fit ``without_<c>`` for each unknown c, test c (``unseen``), and fit ``all_seen``, test every c
  (``seen``). With an explicit list: fit ``listed``; listed concepts are ``seen``, the others ``unseen``.
  ``pooled`` (all known + all unknown meta-test rows) is scored with ``all_seen`` (group ``seen``)
  or ``listed`` (group ``listed``).
- ``ood`` (only for the concepts of ``evaluate.groups``): OpenOOD's detection target, fit ``known``; test
  every known meta-test row (in-distribution, target 1, whether the CNN is right or not) vs the concept's
  meta-test rows (target 0).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from gradmeta.core.errors import GradmetaError
from gradmeta.features import read_concept_features

LEAVE_ONE_OUT = "leave_one_out"
CORRECT, IN_DISTRIBUTION = "correct", "in_distribution"  # what target 1 means in a cell


@dataclass(frozen=True)
class Split:
    """Row positions (into one concept's features table) of meta-train and meta-test."""

    train: np.ndarray
    test: np.ndarray


def split_concept(frame: pd.DataFrame, test_fraction: float, seed: int, stratify: bool) -> Split:
    """Disjoint, reproducible meta-train / meta-test positions; stratified by ``correct`` if asked."""
    n = len(frame)
    positions = np.arange(n)
    labels = frame["correct"].to_numpy()
    strat = labels if stratify and len(np.unique(labels)) > 1 and min(np.bincount(labels.astype(int))) >= 2 else None
    if n < 2:
        raise GradmetaError(f"concept {frame['concept'].iloc[0] if n else '?'}: needs at least 2 rows to split, got {n}")
    train, test = train_test_split(positions, test_size=test_fraction, random_state=seed, shuffle=True, stratify=strat)
    return Split(np.sort(train), np.sort(test))


MIN_SPLIT_ROWS = 2  # rows each side of a concept's meta split needs (a stratified known concept: one of each kind)


def check_split_sizes(frames: dict[str, pd.DataFrame], test_fraction: float, params_file: str) -> None:
    """Refuse a ``meta.test_fraction`` that leaves fewer than :data:`MIN_SPLIT_ROWS` rows on either side of
    some concept's split (scikit-learn's counts: ``ceil(n * test_fraction)`` to meta-test, the rest to
    meta-train), naming the concept and the counts, before any fit."""
    for concept, frame in sorted(frames.items()):
        n = len(frame)
        n_test = math.ceil(n * test_fraction)
        if min(n_test, n - n_test) < MIN_SPLIT_ROWS:
            raise GradmetaError(f"{params_file}: meta.test_fraction {test_fraction:g} splits the {n} rows of concept "
                                f"{concept!r} into {n - n_test} meta-train and {n_test} meta-test; each side needs at "
                                f"least {MIN_SPLIT_ROWS} (choose a fraction between {MIN_SPLIT_ROWS / n:.3g} and "
                                f"{1 - MIN_SPLIT_ROWS / n:.3g}, or more rows)")


def make_splits(frames: dict[str, pd.DataFrame], test_fraction: float, seed: int, known: str) -> dict[str, Split]:
    """One split per concept for one repeat; each concept's split uses its own seed offset (by sorted
    name); the ``known`` concept's split is stratified by correctness."""
    return {c: split_concept(f, test_fraction, seed + 1000 * i, stratify=(c == known))
            for i, (c, f) in enumerate(sorted(frames.items()))}


def as_arrays(frames: dict[str, pd.DataFrame], columns: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per concept: metrics float64 (n, len(columns)) and target int (n,), 1 = correct."""
    return {c: (f[columns].to_numpy(dtype=np.float64), f["correct"].to_numpy().astype(int)) for c, f in frames.items()}


@dataclass(frozen=True)
class RowSet:
    """Rows drawn from several concepts: (concept, positions) pairs, in order."""

    parts: tuple[tuple[str, np.ndarray], ...]

    def gather(self, arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Metrics (n, columns) and target (n,) 1 = correct, from per-concept arrays (see :func:`as_arrays`)."""
        xs = [arrays[c][0][pos] for c, pos in self.parts]
        ys = [arrays[c][1][pos] for c, pos in self.parts]
        return np.concatenate(xs), np.concatenate(ys)

    def in_distribution(self, known: str) -> np.ndarray:
        """Target (n,) 1 for the rows of the ``known`` concept, 0 for every other row (OpenOOD's)."""
        return np.concatenate([np.full(len(pos), int(c == known)) for c, pos in self.parts])


def fit_sets(known_concept: str, unknowns: list[str], known_unknowns: str | list[str],
             splits: dict[str, Split]) -> dict[str, RowSet]:
    """The training row sets of one repeat, by name (``known``, ``without_<c>``, ``all_seen`` or ``listed``)."""
    known = (known_concept, splits[known_concept].train)
    out = {"known": RowSet((known,))}
    if known_unknowns == LEAVE_ONE_OUT:
        for c in unknowns:
            out[f"without_{c}"] = RowSet((known, *((o, splits[o].train) for o in unknowns if o != c)))
        out["all_seen"] = RowSet((known, *((o, splits[o].train) for o in unknowns)))
    else:
        out["listed"] = RowSet((known, *((o, splits[o].train) for o in known_unknowns)))
    return out


@dataclass(frozen=True)
class ScenarioCell:
    """One reported cell: scenario / test set (/ seen or unseen), the fit it uses, and its test rows."""

    scenario: str
    test_set: str
    group: str | None  # 'seen' / 'unseen' for known_unknowns, else None
    fit: str
    rows: RowSet
    target: str = CORRECT  # CORRECT: 1 = the CNN is right; IN_DISTRIBUTION: 1 = a row of the known concept


def evaluations(frames: dict[str, pd.DataFrame], known: str, unknowns: list[str], known_unknowns: str | list[str],
                splits: dict[str, Split]) -> list[ScenarioCell]:
    """Every (scenario, test set) of one repeat with the fit that serves it and its meta-test rows."""
    known_test = splits[known].test
    correct = frames[known]["correct"].to_numpy()
    known_correct = known_test[correct[known_test]]
    out = [ScenarioCell("misclassification", known, None, "known", RowSet(((known, known_test),)))]
    per_concept = {c: RowSet(((known, known_correct), (c, splits[c].test))) for c in unknowns}
    out += [ScenarioCell("unknown", c, None, "known", rows) for c, rows in per_concept.items()]
    if unknowns:
        pooled = RowSet(((known, known_test), *((c, splits[c].test) for c in unknowns)))
        out.append(ScenarioCell("unknown", "pooled", None, "known", pooled))
        fit, group = ("all_seen", "seen") if known_unknowns == LEAVE_ONE_OUT else ("listed", "listed")
        out.append(ScenarioCell("known_unknowns", "pooled", group, fit, pooled))
    for c in unknowns:
        if known_unknowns == LEAVE_ONE_OUT:
            out.append(ScenarioCell("known_unknowns", c, "unseen", f"without_{c}", per_concept[c]))
            out.append(ScenarioCell("known_unknowns", c, "seen", "all_seen", per_concept[c]))
        else:
            group = "seen" if c in known_unknowns else "unseen"
            out.append(ScenarioCell("known_unknowns", c, group, "listed", per_concept[c]))
    return out


def ood_evaluations(known: str, concepts: list[str], splits: dict[str, Split]) -> list[ScenarioCell]:
    """OpenOOD's detection cells of one repeat, one per concept: every known meta-test row vs the concept's."""
    return [ScenarioCell("ood", c, None, "known", RowSet(((known, splits[known].test), (c, splits[c].test))),
                       IN_DISTRIBUTION) for c in concepts]


def load_concept_features(features_dir: str, concepts: tuple[str, ...], log: logging.Logger | None = None,
                          shards: int | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Features of ``concepts`` from ``<dir>/<concept>/part-<k>.parquet`` (every shard, in order;
    :func:`gradmeta.features.read_concept_features`) and each concept's metadata (source, kind,
    provenance); every part must come from the same model (same sha256 in its metadata). Part files
    beyond a concept's K (left by a run with more shards) are not read, and ``log`` names them.
    ``shards``: the K of ``extract.shards``; features made with another K are refused."""
    frames, metas, models = {}, {}, {}
    for concept in concepts:
        frame, meta, stale = read_concept_features(features_dir, concept, shards)
        frames[concept], metas[concept], models[concept] = frame, meta, meta.get("model_sha256")
        if stale and log is not None:
            log.warning("%s: not read, beyond the %d shard(s) of %s: %s", Path(features_dir) / concept,
                        meta["shards"], concept, ", ".join(p.name for p in stale))
    if len(set(models.values())) > 1:
        listing = ", ".join(f"{c}: {str(h)[:12]}" for c, h in models.items())
        raise GradmetaError(f"{features_dir}: features come from different models ({listing}); rerun extract")
    return frames, metas
