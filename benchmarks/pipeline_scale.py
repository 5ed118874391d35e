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


def apply(params_path: Path, scale: float, source: str) -> None:
    params = yaml.safe_load(params_path.read_text())
    params["data"]["source"] = source
    for concept, sizes in scaled_sizes(scale).items():
        params["data"]["concepts"][concept].update(sizes)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


@click.command()
@click.option("--scale", "scales", type=float, multiple=True, default=(1.0,), show_default=True)
@click.option("--source", default="synthetic", type=click.Choice(["synthetic", "real"]), show_default=True)
@click.option("--json", "json_path", default=None, help="Also write the figures here.")
@click.option("--print-command", is_flag=True, help="Print the dvc exp run line for the first scale and exit.")
@click.option("--as-is", is_flag=True, help="Run params.yaml as committed (no scaling): the default run.")
def main(scales: tuple[float, ...], source: str, json_path: str | None, print_command: bool, as_is: bool) -> None:
    if print_command:
        print("dvc exp run " + " ".join(f"-S {a}" for a in set_arguments(scales[0], source)))
        return
    results = []
    for scale in ((None,) if as_is else scales):
        with tempfile.TemporaryDirectory(prefix="gradmeta-scale-") as tmp:
            repo = Path(tmp)
            copy_repo(repo)
            if scale is not None:
                apply(repo / "params.yaml", scale, source)
            memory: dict[str, float] = {}
            total, stages = timed_repro(repo, force=False, echo=True, memory=memory)
            peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            results.append({"scale": scale or "params.yaml", "source": source if scale else "params.yaml",
                            "sizes": scaled_sizes(scale) if scale else "params.yaml", "total_s": round(total, 1),
                            "stages_s": {k: round(v, 1) for k, v in stages.items()},
                            "peak_rss_gb_so_far": round(peak_gb, 2), "stage_peak_rss_gb": memory})
        print(f"scale {scale or 'params.yaml'}: {total:.0f} s end to end, peak RSS (largest process so far) {peak_gb:.2f} GB")
        for name, seconds in stages.items():
            print(f"  {name:24s} {seconds:8.1f} s  {memory.get(name, float('nan')):6.2f} GB")
        sys.stdout.flush()
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
