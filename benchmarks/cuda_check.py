"""A short CUDA check of training and gradient extraction, for a machine with a GPU.

    python benchmarks/cuda_check.py [--n 4096]

Trains the default CNN for one epoch on a few thousand synthetic digits on the GPU, then runs the
gradient engine on CPU and GPU over the same images and reports the largest relative difference of
every statistic (mean: relative to the layer's std) and the GPU throughput next to a plain batched
forward+backward. Exits 1 without a CUDA device or when CPU and GPU disagree beyond 1e-3.
"""

from __future__ import annotations

import sys
import time

import click
import torch
import torch.nn.functional as F

from gradmeta.cnn import CNNConfig, TrainConfig, accuracy, build_cnn, to_tensor, train_cnn
from gradmeta.datasets import DataConfig, prepare_concept
from gradmeta.uncertainty.gradients import PAPER_STATISTICS, gradient_statistics


def _timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


@click.command()
@click.option("--n", default=4096, show_default=True)
@click.option("--chunk-size", default=256, show_default=True)
def main(n: int, chunk_size: int) -> None:
    if not torch.cuda.is_available():
        click.echo("error: no CUDA device", err=True)
        sys.exit(1)
    dev = torch.device("cuda")
    concepts = {"digits": {"source": "synthetic_digits", "train": 6000, "test": 1000}}
    data = prepare_concept("digits", DataConfig.from_params({"data": {"concepts": concepts}}))
    train, test = data.select("train"), data.select("test")
    model = build_cnn(CNNConfig(), seed=0)
    x, y = to_tensor(train.images), torch.from_numpy(train.labels)
    start = time.perf_counter()
    train_cnn(model, x, y, x[:0], y[:0], TrainConfig(epochs=1), dev, progress=False)
    acc = accuracy(model, to_tensor(test.images), torch.from_numpy(test.labels))
    click.echo(f"train on {torch.cuda.get_device_name()}: 1 epoch in {time.perf_counter() - start:.1f} s, "
               f"test accuracy {acc:.4f}")

    images = to_tensor(test.images).repeat(max(1, n // len(test) + 1), 1, 1, 1)[:n]
    gpu = gradient_statistics(model.to(dev), images.to(dev), PAPER_STATISTICS, chunk_size=chunk_size)
    cpu = gradient_statistics(model.cpu(), images[:512], PAPER_STATISTICS, chunk_size=64)
    worst = 0.0
    for key, ref in cpu.items():
        got = gpu[key][:512]
        scale = cpu[key.rsplit("/", 1)[0] + "/std"].abs() if key.endswith("/mean") else ref.abs()
        worst = max(worst, float(((got - ref).abs() / scale.clamp_min(1e-12)).max()))
    click.echo(f"engine CPU vs GPU over {len(cpu)} columns: largest relative difference {worst:.2e}")

    model.to(dev)
    x_dev = images.to(dev)

    def plain() -> None:
        for s in range(0, n, chunk_size):
            model.zero_grad(set_to_none=True)
            logits = model(x_dev[s: s + chunk_size])
            F.cross_entropy(logits, logits.argmax(1), reduction="sum").backward()

    t_plain = _timed(plain)
    t_engine = _timed(lambda: gradient_statistics(model, x_dev, PAPER_STATISTICS, chunk_size=chunk_size))
    click.echo(f"GPU, N={n}, chunk {chunk_size}: plain forward+backward {n / t_plain:.0f} images/s, "
               f"engine (paper statistics) {n / t_engine:.0f} images/s ({t_plain / t_engine:.2f}x), "
               f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
