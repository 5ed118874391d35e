"""The research loop, timed side by side against an earlier commit: a fresh clone's `dvc repro`, a
no-op `dvc repro` and `dvc status`, a meta-only experiment and a train-seed experiment.

Two throw-away repositories are made in one run: ``baseline`` holds the git-tracked files of
``--baseline`` (``git archive``, a fresh clone of that commit) and ``current`` the git-tracked files
of this working tree. Each runs its *own* ``src/`` (``PYTHONPATH``), with the packages of this
environment. On each, in this order:

1. ``dvc repro`` from scratch (no cache, no run-cache: a fresh clone), with the seconds of each stage and,
   where the side's stages log it (``$GRADMETA_STARTUP_LOG``), each stage's start-up: the seconds from its
   process's start to its first work (imports done), and their median;
2. a no-op ``dvc repro`` and ``dvc status``, median of ``--noop-rounds`` calls each;
3. ``dvc exp run -S meta.xgboost.max_depth=4`` (meta and evaluate rerun);
4. ``git checkout -- . && dvc checkout -f`` back to step 1's outputs (committed after it; not timed),
   then ``dvc exp run -S train.seed=1`` (every stage after download reruns).

The two sides alternate per step (baseline first), so a noisy neighbour falls on both. Printed: each
time, the ratio current / baseline, and each side's stage times.

``--same-work``: the current side runs every value the baseline's ``params.yaml`` sets (its old keys moved where
they went: ``detectors.threads``/``device`` to ``detectors_stage``; keys added since keep their defaults, so
the scenarios added since still run), so both sides do nearly the same work; without it each
side runs its own defaults, which grow as the project does (more detectors, feature sets, scenarios).
``--repro-only``: step 1 alone.

    python benchmarks/fast_loop.py [--baseline e7461e7] [--json benchmarks/results/fast_loop.json]
"""

from __future__ import annotations

import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import click
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from repro_under_load import ROOT, copy_repo, timed_repro  # noqa: E402

GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.invalid"}


def archive_commit(rev: str, dest: Path) -> None:
    """The git-tracked files of ``rev`` in ``dest``, committed in a fresh repository there."""
    blob = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    env = {**os.environ, **GIT_ENV}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", rev]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)


def side_env(repo: Path) -> dict[str, str]:
    """The environment a side's DVC runs in: its own ``src/`` first on the import path."""
    return {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1",
            "PYTHONPATH": str(repo / "src"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def timed(repo: Path, *args: str) -> float:
    """Wall seconds of ``python -m dvc <args>`` in ``repo`` (fails loudly)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=side_env(repo), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed in {repo}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def restore(repo: Path) -> None:
    """Back to the committed params and the outputs of the first run (from the cache). Only the root
    project's outputs: a commit that has the OpenOOD project too (openood/dvc.yaml) never ran it here."""
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=repo, check=True)
    timed(repo, "checkout", "-f", "dvc.yaml")


STARTUP = re.compile(r"^(\S+): start-up (\d+\.\d+) s$")  # gradmeta.core.console.setup_logging's line


def startups(lines: list[str]) -> dict[str, float]:
    """Each stage's start-up seconds (process start to its first work) from its log line; none from a commit
    whose stages do not log it."""
    return {hit.group(1): float(hit.group(2)) for hit in map(STARTUP.match, lines) if hit}


def first_repro(repo: Path) -> tuple[float, dict[str, float], dict[str, float]]:
    """Step 1 on one side: ``dvc repro`` with the side's own ``src/``, then its outputs committed; the wall
    seconds, each stage's seconds, and each stage's start-up seconds (where the side logs them)."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(repo / "src")  # timed_repro passes os.environ on
    lines: list[str] = []
    try:
        total, stages = timed_repro(repo, force=False, env={"GRADMETA_STARTUP_LOG": "1"}, lines=lines)
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)
    # what the run wrote becomes the state to come back to between the experiments (a commit's own
    # dvc.lock may hold another CPU's hashes, whose objects this cache does not have)
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "reproduced", "--allow-empty"]):
        subprocess.run(cmd, cwd=repo, check=True, env=side_env(repo), capture_output=True)
    return total, stages, startups(lines)


def report(figures: dict[str, dict], baseline: str, json_path: str | None,
           keys: tuple[str, ...] = ("repro_s", "noop_repro_s", "noop_status_s", "exp_meta_s", "exp_seed_s")) -> None:
    ratios = {k: round(figures["current"][k] / figures["baseline"][k], 3) for k in keys}
    print(f"\n{'':<16}{'baseline ' + baseline:>18}{'current':>10}{'ratio':>8}")
    for k in keys:
        print(f"{k:<16}{figures['baseline'][k]:>18}{figures['current'][k]:>10}{ratios[k]:>8.3f}")
    for side, values in figures.items():
        print(f"{side} stages: " + ", ".join(f"{k} {v}" for k, v in values["stages_s"].items()))
        if values["startup_s"]:
            print(f"{side} start-up (process start to first work), median {values['startup_median_s']} s: "
                  + ", ".join(f"{k} {v}" for k, v in values["startup_s"].items()))
    if json_path:
        Path(json_path).write_text(json.dumps({"baseline": baseline, "figures": figures, "ratios": ratios}, indent=1)
                                   + "\n")


WHOLE = ("concepts", "user_concepts", "feature_sets")  # mappings whose entries are the work itself: replaced whole


def merged(current: dict, older: dict) -> dict:
    """``current`` with every value ``older`` sets: nested groups merged key by key, the :data:`WHOLE` mappings
    (and every non-mapping value) replaced."""
    out = dict(current)
    for key, value in older.items():
        deeper = isinstance(value, dict) and isinstance(out.get(key), dict) and key not in WHOLE
        out[key] = merged(out[key], value) if deeper else value
    return out


def baseline_params(baseline: str) -> str:
    """The baseline's params.yaml as this commit reads it: this commit's params.yaml (dvc.yaml declares keys
    added since) with every value the baseline sets, and the keys that moved since, moved."""
    def read(rev: str) -> dict:
        return yaml.safe_load(subprocess.run(["git", "show", f"{rev}:params.yaml"], cwd=ROOT, capture_output=True,
                                             text=True, check=True).stdout)

    older = read(baseline)
    detectors = older.get("detectors", {})
    moved = {key: detectors.pop(key) for key in ("threads", "device") if key in detectors}
    if moved:
        older["detectors_stage"] = moved
    return yaml.safe_dump(merged(read("HEAD"), older), sort_keys=False)


@click.command()
@click.option("--baseline", default="e7461e7", show_default=True, help="The commit to compare with.")
@click.option("--noop-rounds", default=5, show_default=True)
@click.option("--json", "json_path", default=None, help="Also write the figures here.")
@click.option("--same-work", is_flag=True, help="The current side runs the baseline's params.yaml.")
@click.option("--repro-only", is_flag=True, help="Step 1 (the fresh clone's dvc repro) alone.")
def main(baseline: str, noop_rounds: int, json_path: str | None, same_work: bool, repro_only: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="gradmeta-loop-") as tmp:
        repos = {"baseline": Path(tmp) / "baseline", "current": Path(tmp) / "current"}
        for repo in repos.values():
            repo.mkdir()
        archive_commit(baseline, repos["baseline"])
        copy_repo(repos["current"])
        if same_work:
            (repos["current"] / "params.yaml").write_text(baseline_params(baseline))
        figures: dict[str, dict] = {side: {} for side in repos}
        for side, repo in repos.items():
            total, stages, starts = first_repro(repo)
            figures[side].update(repro_s=round(total, 1), stages_s={k: round(v, 1) for k, v in stages.items()},
                                 startup_s=starts, startup_median_s=round(statistics.median(starts.values()), 2)
                                 if starts else None)
            print(f"{side}: dvc repro {total:.1f} s; stage start-up median {figures[side]['startup_median_s']} s",
                  flush=True)
        if repro_only:
            report(figures, baseline, json_path, ("repro_s",))
            return
        for side, repo in repos.items():
            for what in ("repro", "status"):
                rounds = [timed(repo, what) for _ in range(noop_rounds)]
                figures[side][f"noop_{what}_s"] = round(statistics.median(rounds), 2)
            print(f"{side}: no-op repro {figures[side]['noop_repro_s']} s, status {figures[side]['noop_status_s']} s",
                  flush=True)
        for key, setting in (("exp_meta_s", "meta.xgboost.max_depth=4"), ("exp_seed_s", "train.seed=1")):
            for side, repo in repos.items():
                figures[side][key] = round(timed(repo, "exp", "run", "-S", setting), 1)
                print(f"{side}: dvc exp run -S {setting}: {figures[side][key]} s", flush=True)
                restore(repo)
    report(figures, baseline, json_path)


if __name__ == "__main__":
    main()
