"""Training throughput of the default CNN: the standard layout against channels-last, in one process.

Rounds alternate the two layouts (one epoch of --n random images each); prints images/s of the
best round and the median over rounds of the per-round ratio. The train stage picks channels-last
on the CPU where the model's forward accepts it (``gradmeta.cnn.training``).

    python benchmarks/training.py [--n 4000] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import statistics
import time

import click
import torch

import gradmeta.cnn.training as training
from gradmeta.cnn import CNNConfig, TrainConfig, build_cnn
from gradmeta.runtime import configure


def one_epoch(x: torch.Tensor, y: torch.Tensor, layout: str) -> float:
    chosen = training._training_layout
    if layout == "standard":
        training._training_layout = lambda model, probe: torch.contiguous_format
    try:
        configure(torch.get_num_threads(), 0)
        model = build_cnn(CNNConfig(), seed=0)
        start = time.perf_counter()
        training.train_cnn(model, x, y, x[:64], y[:64], TrainConfig(epochs=1), torch.device("cpu"), progress=False)
        return len(x) / (time.perf_counter() - start)
    finally:
        training._training_layout = chosen


@click.command()
@click.option("--n", default=4000, show_default=True)
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=2, show_default=True)
def main(n: int, rounds: int, threads: int) -> None:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 28, 28, generator=g) > 0.8).float()
    y = torch.randint(0, 10, (n,), generator=g)
    one_epoch(x[:512], y[:512], "channels_last")  # warm-up
    speed: dict[str, list[float]] = {"standard": [], "channels_last": []}
    for _ in range(rounds):
        for layout in speed:
            speed[layout].append(one_epoch(x, y, layout))
    ratio = statistics.median(c / s for s, c in zip(speed["standard"], speed["channels_last"]))
    print(f"training, default CNN, {n} images x 1 epoch, batch 64, {threads} threads, {rounds} rounds")
    for layout, values in speed.items():
        print(f"  {layout:14s} best {max(values):6.0f} images/s, median {statistics.median(values):6.0f}")
    print(f"  channels-last / standard, median per round: {ratio:.2f}x")


if __name__ == "__main__":
    main()
