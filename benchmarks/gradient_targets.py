"""Several gradient targets of one image set: one pass per target (``iterate_chunks`` once per
target, the extract stage before) against one shared forward per chunk and one backward per target
(``iterate_targets``, the extract stage now), in one process on the default CNN.

Rounds alternate the two; prints images/s of each (median over rounds) and the median over rounds
of the per-round ratio, after checking that every target's values are identical in both.

    python benchmarks/gradient_targets.py [--n 2048] [--rounds 3] [--threads 2] [--chunk-size 64]
"""

from __future__ import annotations

import statistics
import time

import click
import torch

from gradmeta.cnn import CNNConfig, build_cnn
from gradmeta.runtime import configure
from gradmeta.uncertainty.gradients import iterate_chunks, iterate_targets

TARGETS = ("cross_entropy", "kl_uniform", "bce_ones")


def one_pass_per_target(model: torch.nn.Module, x: torch.Tensor, chunk_size: int) -> dict[str, list[dict]]:
    return {t: [features for _, features in iterate_chunks(model, x, chunk_size=chunk_size, target=t)]
            for t in TARGETS}


def shared_forward(model: torch.nn.Module, x: torch.Tensor, chunk_size: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {t: [] for t in TARGETS}
    for by_target in iterate_targets(model, x, TARGETS, chunk_size=chunk_size):
        for t in TARGETS:
            out[t].append(by_target[t][1])
    return out


@click.command()
@click.option("--n", default=2048, show_default=True)
@click.option("--rounds", default=3, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--chunk-size", default=64, show_default=True)
def main(n: int, rounds: int, threads: int, chunk_size: int) -> None:
    configure(threads, 0)
    model = build_cnn(CNNConfig(), seed=0)
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a, b = one_pass_per_target(model, x, chunk_size), shared_forward(model, x, chunk_size)
    for t in TARGETS:
        for fa, fb in zip(a[t], b[t], strict=True):
            if fa.keys() != fb.keys() or not all(torch.equal(fa[k], fb[k]) for k in fa):
                raise SystemExit(f"{t}: the shared forward's values differ from the target's own pass")
    print(f"{len(TARGETS)} gradient targets ({', '.join(TARGETS)}), default CNN, {n} images, chunk {chunk_size}, "
          f"{threads} threads, {rounds} rounds; values identical")
    separate, shared, ratios = [], [], []
    for _ in range(rounds):
        start = time.perf_counter()
        one_pass_per_target(model, x, chunk_size)
        mid = time.perf_counter()
        shared_forward(model, x, chunk_size)
        end = time.perf_counter()
        separate.append(n / (mid - start))
        shared.append(n / (end - mid))
        ratios.append((mid - start) / (end - mid))
    print(f"  one pass per target  {statistics.median(separate):6.0f} images/s (all targets)")
    print(f"  shared forward       {statistics.median(shared):6.0f} images/s (all targets)")
    print(f"  speed-up, median per round: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
