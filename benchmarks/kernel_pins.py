"""What the CPU kernel pins cost (gradmeta.core.kernels): train, extract and meta throughput, pinned vs native.

Each measurement is a fresh process, since the pins act when the numerical libraries load: the process
calls ``prepare_process()`` with ``GRADMETA_NATIVE_KERNELS`` unset (pinned) or set to 1 (native). Rounds
alternate the two modes; printed are the best rate of each and the median over rounds of the per-round ratio
pinned / native, so a noisy neighbour moves both sides of a ratio alike.

- train:   one epoch of the default CNN (params.yaml's architecture, batch 64) on --train-n random images
- extract: the gradient engine (paper statistics, cross-entropy against the prediction) on the default
           CNN, --extract-n images in chunks of 64
- meta:    the default meta classifiers (logistic regression, XGBoost with 100 trees of depth 3) fitted on
           5,500 x 170 random features with 3% positives, the size of the default run's largest feature set

    python benchmarks/kernel_pins.py [--rounds 3] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("train", "extract", "meta")


def _train(threads: int, n: int) -> float:
    import torch

    from gradmeta.cnn import CNNConfig, TrainConfig, build_cnn
    from gradmeta.cnn.training import train_cnn
    from gradmeta.runtime import configure

    configure(threads, 0)
    x, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
    model = build_cnn(CNNConfig(), seed=0)
    start = time.perf_counter()
    train_cnn(model, x, y, x[:64], y[:64], TrainConfig(epochs=1), torch.device("cpu"), progress=False)
    return n / (time.perf_counter() - start)


def _extract(threads: int, n: int) -> float:
    import torch

    from gradmeta.cnn import CNNConfig, build_cnn
    from gradmeta.runtime import configure
    from gradmeta.uncertainty.gradients.engine import gradient_statistics

    configure(threads, 0)
    model = build_cnn(CNNConfig(), seed=0).eval()
    x = torch.rand(n, 1, 28, 28)
    gradient_statistics(model, x[:64], chunk_size=64)  # warm-up: plan and first allocations
    start = time.perf_counter()
    gradient_statistics(model, x, chunk_size=64)
    return n / (time.perf_counter() - start)


def _meta(threads: int, fits: int) -> float:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from gradmeta.meta.classifiers import LogisticMetaClassifier, XGBoostMetaClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5500, 170)).astype(np.float32)
    y = (rng.random(5500) < 0.97).astype(np.int64)
    x[y == 0] += 0.3
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(fits):
            LogisticMetaClassifier().fit(x, y)
            XGBoostMetaClassifier(n_jobs=threads).fit(x, y)
    return 2 * fits / (time.perf_counter() - start)


def child(workload: str, threads: int, size: int) -> None:
    """Run one workload in this (fresh) process and print its rate as JSON."""
    from gradmeta.core.kernels import kernels_mode
    from gradmeta.core.process import prepare_process

    prepare_process()
    rate = {"train": _train, "extract": _extract, "meta": _meta}[workload](threads, size)
    print(json.dumps({"rate": rate, "kernels": kernels_mode()}))


def measure(workload: str, native: bool, threads: int, size: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "GRADMETA_NATIVE_KERNELS"}
    if native:
        env["GRADMETA_NATIVE_KERNELS"] = "1"
    proc = subprocess.run([sys.executable, __file__, "--child", workload, "--threads", str(threads),
                           "--size", str(size)], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])["rate"]


@click.command()
@click.option("--rounds", default=3, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--train-n", default=3000, show_default=True)
@click.option("--extract-n", default=1024, show_default=True)
@click.option("--meta-fits", default=3, show_default=True)
@click.option("--json", "json_out", default=None, help="Also write the figures to this file.")
@click.option("--child", "child_workload", default=None, hidden=True)
@click.option("--size", default=0, hidden=True)
def main(rounds: int, threads: int, train_n: int, extract_n: int, meta_fits: int, json_out: str | None,
         child_workload: str | None, size: int) -> None:
    if child_workload:
        child(child_workload, threads, size)
        return
    sizes = {"train": train_n, "extract": extract_n, "meta": meta_fits}
    units = {"train": "images/s", "extract": "images/s", "meta": "fits/s"}
    result = {}
    print(f"CPU kernel pins, pinned vs native, {rounds} rounds, {threads} threads (fresh process per measurement)")
    for workload in WORKLOADS:
        pinned, native = [], []
        for r in range(rounds):  # alternate which mode goes first
            order = (False, True) if r % 2 else (True, False)
            for is_native in order:
                (native if is_native else pinned).append(measure(workload, is_native, threads, sizes[workload]))
        ratio = statistics.median(p / n for p, n in zip(pinned, native))
        result[workload] = {"pinned": max(pinned), "native": max(native), "median_ratio": ratio, "unit": units[workload],
                            "size": sizes[workload]}
        print(f"{workload:8s} pinned {max(pinned):9.1f} {units[workload]:9s} native {max(native):9.1f}  "
              f"median ratio pinned/native {ratio:.2f}x")
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
