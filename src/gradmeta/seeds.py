"""Training-seed spread: experiments that differ only in ``train.seed`` (the README's queue recipe), gathered
from ``dvc exp show --json`` into mean ± std over the seeds of every headline metric, as OpenOOD reports
three training checkpoints.

The spread over the meta splits (``<key>_std`` of ``headline.json``, one trained CNN) and the spread over
training seeds (this) answer different questions: the first says how much the numbers move with the rows
a meta classifier is fitted and tested on, the second how much they move with the CNN itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmeta.core.errors import GradmetaError

SEED_PARAM = "train.seed"
STD_SUFFIX = "_std"


@dataclass(frozen=True)
class Run:
    """One experiment (or commit) of ``dvc exp show``: its name, params (flattened) and headline metrics."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass(frozen=True)
class SeedGroup:
    """Runs whose params agree but for ``train.seed``, one per seed, in seed order."""

    runs: tuple[Run, ...]
    differs_from_baseline: dict[str, Any]  # params (but the seed) where the group differs from the first group

    @property
    def seeds(self) -> list[int]:
        return [int(r.params[SEED_PARAM]) for r in self.runs]

    def spread(self, key: str) -> tuple[float, float, list[float]]:
        """Mean and sample std (ddof=1) over the seeds of a metric, and its value per seed."""
        values = [float(r.metrics[key]) for r in self.runs]
        return float(np.mean(values)), float(np.std(values, ddof=1)), values


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def _revs(shown: list[dict]) -> Iterator[dict]:
    """Every commit row and experiment row of ``dvc exp show --json`` (not the workspace: it repeats one of them)."""
    for entry in shown:
        if entry.get("rev") != "workspace":
            yield entry
        for exp in entry.get("experiments") or []:
            yield from exp.get("revs") or []


def runs_of(shown: list[dict], params_file: str, metrics_file: str) -> tuple[list[Run], list[str]]:
    """The runs with both files read, and the names of those without (queued, failed, another pipeline)."""
    runs, skipped = [], []
    for rev in _revs(shown):
        name = rev.get("name") or str(rev.get("rev", "?"))[:7]
        data = rev.get("data") or {}
        params = ((data.get("params") or {}).get(params_file) or {}).get("data")
        metrics = ((data.get("metrics") or {}).get(metrics_file) or {}).get("data")
        if not params or not metrics or rev.get("error"):
            skipped.append(name)
            continue
        runs.append(Run(name, _flatten(params), {k: v for k, v in _flatten(metrics).items()
                                                 if isinstance(v, (int, float)) and not isinstance(v, bool)}))
    return runs, skipped


def seed_groups(runs: list[Run]) -> list[SeedGroup]:
    """Runs grouped by every param but ``train.seed``; groups of at least two seeds, in order of first run. Two
    runs of one seed in a group (a commit and an experiment with the same params) count once: the first."""
    groups: dict[tuple, dict[int, Run]] = {}
    for run in runs:
        if SEED_PARAM not in run.params:
            raise GradmetaError(f"{run.name}: no {SEED_PARAM} in its params")
        key = tuple(sorted((k, repr(v)) for k, v in run.params.items() if k != SEED_PARAM))
        groups.setdefault(key, {}).setdefault(int(run.params[SEED_PARAM]), run)
    chosen = [tuple(by_seed[s] for s in sorted(by_seed)) for by_seed in groups.values() if len(by_seed) >= 2]
    if not chosen:
        return []
    first = chosen[0][0].params
    return [SeedGroup(g, {k: v for k, v in g[0].params.items() if k != SEED_PARAM and first.get(k) != v})
            for g in chosen]


def seed_table(group: SeedGroup) -> list[str]:
    """Markdown: one row per headline metric (its ``_std`` companion as the split std, mean over the seeds)."""
    keys = [k for k in group.runs[0].metrics if not k.endswith(STD_SUFFIX)
            and all(k in r.metrics for r in group.runs)]
    seeds = ", ".join(map(str, group.seeds))
    lines = [f"| metric | mean ± std over seeds ({seeds}) | split std (mean over seeds) | per seed |", "|---|---|---|---|"]
    for key in keys:
        mean, std, values = group.spread(key)
        split = key + STD_SUFFIX
        split_std = (f"{np.mean([r.metrics[split] for r in group.runs]):.4f}"
                     if all(split in r.metrics for r in group.runs) else "–")
        lines.append(f"| {key} | {mean:.4f} ± {std:.4f} | {split_std} | {', '.join(f'{v:.4f}' for v in values)} |")
    return lines


def seeds_report(shown: list[dict], params_file: str = "params.yaml",
                 metrics_file: str = "metrics/headline.json") -> list[str]:
    """The lines ``gradmeta seeds`` prints: per group of runs that differ only in the seed, who is in it and the
    table; a line for runs left out; an error when no group has two seeds."""
    runs, skipped = runs_of(shown, params_file, metrics_file)
    groups = seed_groups(runs)
    if not groups:
        raise GradmetaError(f"no two experiments differ only in {SEED_PARAM} (with {params_file} and {metrics_file} "
                            f"read): queue some with `dvc exp run --queue -S {SEED_PARAM}=1`, then `dvc queue start`")
    out = []
    for group in groups:
        variant = ", ".join(f"{k}={v}" for k, v in group.differs_from_baseline.items()) or "the baseline's params"
        out += [f"{len(group.runs)} runs that differ only in {SEED_PARAM} ({variant}): "
                + ", ".join(f"{r.name} (seed {s})" for r, s in zip(group.runs, group.seeds)), "", *seed_table(group), ""]
    if skipped:
        out.append(f"left out (no {metrics_file} or {params_file}: queued, failed or another pipeline): "
                   + ", ".join(skipped))
    return out
