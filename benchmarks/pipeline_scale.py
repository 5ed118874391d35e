"""End-to-end time and peak memory of the pipeline at a fraction of the paper's sizes.

Copies the repository (git-tracked files only, as a fresh clone has them) into a temporary folder,
scales every concept's sizes to ``--scale`` x the paper's (EMNIST digits 240,000 train / 40,000
test, every EMNIST letter (20,800), every Omniglot drawing (32,460), the CIFAR-10 test batch
(10,000), 10,000 noise images), runs ``dvc repro`` there and prints the wall time of each stage, the
total, the peak resident memory of the largest process (``ru_maxrss``) and each stage's peak (sampled
every 0.2 s, :mod:`process_memory`). Several scales in one call show
how each stage grows with N (measured in one process, one after the other).

    python benchmarks/pipeline_scale.py --scale 0.1 --scale 1.0 [--source synthetic] [--json out.json]
    python benchmarks/pipeline_scale.py --as-is      # params.yaml unchanged: the default run from a fresh clone
    python benchmarks/pipeline_scale.py --colour     # the stand-in colour profile (32x32 RGB, the small ResNet)
    python benchmarks/pipeline_scale.py --scale 0.25 --baseline e7461e7   # both commits in one run

``--baseline REV``: two throw-away repositories are made first, ``REV``'s git-tracked files (``git archive``)
and this working tree's; both get the same sizes and each runs its own ``src/`` (``PYTHONPATH``), the
baseline first. Printed: each side's stage table and the ratio current / baseline of the totals.

The same sizes as a ``dvc exp run`` line are printed with ``--print-command`` (what the README quotes).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

import click
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_loop import archive_commit  # noqa: E402
from repro_under_load import copy_repo, timed_repro  # noqa: E402

PAPER_SIZES = {"digits": {"train": 240_000, "test": 40_000}, "letters": {"test": 20_800},
               "omniglot": {"test": 32_460}, "cifar10": {"test": 10_000}, "noise": {"test": 10_000}}


def scaled_sizes(scale: float) -> dict[str, dict[str, int]]:
    """The paper's sizes times ``scale`` (at least 1 image each)."""
    return {c: {k: max(1, round(v * scale)) for k, v in sizes.items()} for c, sizes in PAPER_SIZES.items()}


def set_arguments(scale: float, source: str) -> list[str]:
    """``-S key=value`` arguments of ``dvc exp run`` for these sizes."""
    out = [f"data.source={source}"]
    for concept, sizes in scaled_sizes(scale).items():
        out += [f"data.concepts.{concept}.{k}={v}" for k, v in sizes.items()]
    return out


# The stand-in colour profile: CIFAR-10's colour stand-in known (32x32 RGB), the paper's other concepts made
# colour on the way in, the zoo's small ResNet (no dropout layer: no MC dropout).
COLOUR = {"known": "cifar10",
          "concepts": {"cifar10": {"source": "cifar10", "train": 10_000, "test": 2_000},
                       "digits": {"source": "emnist_digits", "test": 500},
                       "letters": {"source": "emnist_letters", "test": 500},
                       "omniglot": {"source": "omniglot", "test": 500},
                       "noise": {"source": "uniform_noise", "test": 500}},
          "architecture": {"kind": "small_resnet", "in_channels": 3, "image_size": 32}}


def apply_colour(params_path: Path) -> None:
    """params.yaml made the stand-in colour profile (:data:`COLOUR`)."""
    params = yaml.safe_load(params_path.read_text())
    params["data"]["known"], params["data"]["concepts"] = COLOUR["known"], COLOUR["concepts"]
    params["train"]["architecture"] = COLOUR["architecture"]
    params["detectors"]["use"] = [d for d in params["detectors"]["use"] if d != "mc_dropout"]
    params["detectors"]["vim"]["dim"] = 32  # of the small ResNet's 64 penultimate features
    params["evaluate"]["remote_concepts"] = ["noise"]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def apply(params_path: Path, scale: float, source: str) -> None:
    params = yaml.safe_load(params_path.read_text())
    params["data"]["source"] = source
    for concept, sizes in scaled_sizes(scale).items():
        params["data"]["concepts"][concept].update(sizes)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_side(repo: Path, label: str, scale: float | None, source: str, colour: bool) -> dict:
    """``dvc repro`` in ``repo`` (already holding its files) with the sizes applied, its own ``src/`` first on
    the import path; the figures of that run, printed too."""
    if colour:
        apply_colour(repo / "params.yaml")
    elif scale is not None:
        apply(repo / "params.yaml", scale, source)
    memory: dict[str, float] = {}
    total, stages = timed_repro(repo, force=False, echo=True, memory=memory, env={"PYTHONPATH": str(repo / "src")})
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"{label}: {total:.0f} s end to end, peak RSS (largest process so far) {peak_gb:.2f} GB")
    for name, seconds in stages.items():
        print(f"  {name:24s} {seconds:8.1f} s  {memory.get(name, float('nan')):6.2f} GB")
    sys.stdout.flush()
    return {"scale": "colour profile" if colour else scale or "params.yaml",
            "source": source if scale else "params.yaml",
            "sizes": COLOUR["concepts"] if colour else scaled_sizes(scale) if scale else "params.yaml",
            "total_s": round(total, 1), "stages_s": {k: round(v, 1) for k, v in stages.items()},
            "peak_rss_gb_so_far": round(peak_gb, 2), "stage_peak_rss_gb": memory}


@click.command()
@click.option("--scale", "scales", type=float, multiple=True, default=(1.0,), show_default=True)
@click.option("--source", default="synthetic", type=click.Choice(["synthetic", "real"]), show_default=True)
@click.option("--json", "json_path", default=None, help="Also write the figures here.")
@click.option("--print-command", is_flag=True, help="Print the dvc exp run line for the first scale and exit.")
@click.option("--as-is", is_flag=True, help="Run params.yaml as committed (no scaling): the default run.")
@click.option("--colour", is_flag=True, help="Run the stand-in colour profile (CIFAR-10's stand-in known, 32x32 "
              "RGB, the small ResNet) instead of scaling the paper's concepts.")
@click.option("--baseline", default=None, help="Also run this commit at the same sizes (first), and print the "
              "ratio of the totals. One scale only.")
def main(scales: tuple[float, ...], source: str, json_path: str | None, print_command: bool, as_is: bool,
         colour: bool, baseline: str | None) -> None:
    if print_command:
        print("dvc exp run " + " ".join(f"-S {a}" for a in set_arguments(scales[0], source)))
        return
    if baseline is not None:
        if len(scales) != 1 or colour:
            raise click.UsageError("--baseline compares one scale (or --as-is), not --colour")
        scale = None if as_is else scales[0]
        with tempfile.TemporaryDirectory(prefix="gradmeta-scale-") as tmp:
            repos = {"baseline": Path(tmp) / "baseline", "current": Path(tmp) / "current"}
            archive_commit(baseline, repos["baseline"])  # both copies first: later edits here do not reach them
            repos["current"].mkdir()
            copy_repo(repos["current"])
            sides = {side: run_side(repo, f"{side} ({baseline if side == 'baseline' else 'working tree'})",
                                    scale, source, colour=False) for side, repo in repos.items()}
        ratio = sides["current"]["total_s"] / sides["baseline"]["total_s"]
        print(f"current / baseline {baseline}: {ratio:.3f}")
        if json_path:
            Path(json_path).write_text(json.dumps({"baseline": baseline, "sides": sides, "ratio": round(ratio, 3)},
                                                  indent=1) + "\n")
        return
    results = []
    for scale in ((None,) if as_is or colour else scales):
        with tempfile.TemporaryDirectory(prefix="gradmeta-scale-") as tmp:
            repo = Path(tmp)
            copy_repo(repo)
            label = "colour profile" if colour else f"scale {scale or 'params.yaml'}"
            results.append(run_side(repo, label, scale, source, colour))
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1) + "\n")

if __name__ == "__main__":
    main()
