"""Benchmark of gradmeta's gradient engine against the alternatives, in one process.

Methods, interleaved over several rounds (best-of per method), on one model (``--model``: the
paper's default CNN, a conv-heavier variant, a small ResNet with BatchNorm, a small transformer;
see architectures.py):
  (a) plain batched forward + backward of the same model (summed loss; the reference); shown for
      context, not as targets: (a') the same at chunk 256, (a'') the same on a channels-last copy
      of the model (the layout the engine runs the convolutions' outputs in on the CPU)
  (b) gradmeta engine, the paper's statistics (l1, l2, max, min, mean, std) for every layer
  (c) gradmeta engine, norms only (l1, l2)
  (d) naive per-sample loop: one forward + backward per image, then plain torch reductions of each
      p.grad and of all gradients concatenated (the tests' reference, in float32)
  (e) torch.func vmap(grad) per-sample gradients + the same plain reductions
Prints images/s (best round), the ratio of best rounds to (a), and the median over rounds of the
ratio to (a) in the same round (methods of one round run back to back, so a slow phase of a
shared machine hits both sides of that ratio); then the peak memory of the engine at two values of
N, each measured in a fresh subprocess.

    python benchmarks/gradient_engine.py [--model resnet] [--n 2048] [--rounds 5] [--threads 2] [--chunk-size 128]
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import time

import click
import torch
import torch.nn.functional as F
from architectures import MODELS, build, input_shape

from gradmeta.core.kernels import kernels_mode
from gradmeta.runtime import configure
from gradmeta.uncertainty.gradients import (
    DEFAULT_CHUNK_SIZE,
    PAPER_STATISTICS,
    gradient_statistics,
)


def make_inputs(n: int, model_name: str = "default") -> tuple[torch.nn.Module, torch.Tensor]:
    model = build(model_name)
    shape = input_shape(model_name)
    # stroke-like sparse images in [0, 1]
    images = (torch.rand(n, *shape) > 0.8).float() * torch.rand(n, *shape)
    return model, images


def plain(model, images, chunk):
    for start in range(0, len(images), chunk):
        model.zero_grad(set_to_none=True)
        logits = model(images[start: start + chunk])
        F.cross_entropy(logits, logits.argmax(1), reduction="sum").backward()


def engine(stats):
    def run(model, images, chunk):
        gradient_statistics(model, images, stats, chunk_size=chunk)
    return run


def plain_statistics(values: torch.Tensor) -> list[torch.Tensor]:
    """The paper's statistics of per-sample values (n, K) with plain torch reductions."""
    return [values.abs().sum(1), values.norm(dim=1), values.amax(1), values.amin(1), values.mean(1),
            values.std(1, unbiased=False)]


def naive(model, images, chunk):
    """What a user writes first: per image, forward + backward, then the statistics of each p.grad
    and of all gradients concatenated."""
    for i in range(len(images)):
        model.zero_grad(set_to_none=True)
        logits = model(images[i: i + 1])
        F.cross_entropy(logits, logits.argmax(1)).backward()
        grads = [p.grad.reshape(1, -1) for p in model.parameters()]
        for g in grads:
            plain_statistics(g)
        plain_statistics(torch.cat(grads, dim=1))


def vmap_grad(model, images, chunk):
    """torch.func per-sample gradients of every parameter, then the same plain statistics."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, x, y):
        return F.cross_entropy(functional_call(model, p, (x.unsqueeze(0),)), y.unsqueeze(0))

    for start in range(0, len(images), chunk):
        x = images[start: start + chunk]
        with torch.no_grad():
            y = model(x).argmax(1)
        per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
        grads = [v.reshape(len(x), -1) for v in per_sample.values()]
        for g in grads:
            plain_statistics(g)
        plain_statistics(torch.cat(grads, dim=1))


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(n: int, chunk: int, threads: int, model_name: str) -> dict:
    """Peak resident memory of one engine call on n images, in a fresh process (Linux: VmHWM reset
    through /proc/self/clear_refs just before the call, so inputs made earlier do not count as peak)."""
    torch.set_num_threads(threads)
    model, images = make_inputs(n, model_name)
    gradient_statistics(model, images[:chunk], PAPER_STATISTICS, chunk_size=chunk)  # warm up allocator
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS
    gradient_statistics(model, images, PAPER_STATISTICS, chunk_size=chunk)
    peak = _status_mb("VmHWM")
    return {"n": n, "rss_before_mb": before, "peak_rss_mb": peak, "engine_increase_mb": peak - before}


def report(per_image: dict[str, list[float]], model_name: str, n: int, chunk_size: int, threads: int,
           rounds: int) -> dict[str, dict[str, float]]:
    """Print images/s of each method's best round, its ratio to (a), and the median per-round ratio; return them."""
    best = {k: min(v) for k, v in per_image.items()}
    plain_rounds = per_image["a plain forward+backward"]
    ref = 1.0 / best["a plain forward+backward"]
    print(f"gradient engine benchmark: {model_name} model, N={n}, chunk={chunk_size}, threads={threads}, "
          f"best of {rounds} rounds, torch {torch.__version__}, {kernels_mode()}, "
          f"ATen {torch.backends.cpu.get_cpu_capability()}, oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'}")
    print(f"{'method':34s} {'images/s':>10s} {'vs (a)':>8s} {'median per round':>17s}")
    figures = {}
    for name, sec in best.items():
        median = statistics.median(p / s for p, s in zip(plain_rounds, per_image[name]))
        figures[name] = {"images_per_s": 1.0 / sec, "best_ratio": 1.0 / sec / ref, "median_ratio": median}
        print(f"{name:34s} {1.0 / sec:10.0f} {1.0 / sec / ref:7.2f}x {median:16.2f}x")
    return figures


@click.command()
@click.option("--n", default=2048, show_default=True, help="Images per method and round.")
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--chunk-size", default=DEFAULT_CHUNK_SIZE, show_default=True)
@click.option("--naive-n", default=128, show_default=True, help="Images for the naive loop (it is slow).")
@click.option("--vmap-chunk", default=16, show_default=True, help="Chunk for vmap (it materialises fc1).")
@click.option("--memory-n", default=(4096, 16384), multiple=True, show_default=True)
@click.option("--model", "model_name", type=click.Choice(MODELS), default="default", show_default=True,
              help="default: the paper's CNN; conv-heavy: 5x5 convs without padding, dense 200; "
                   "resnet: 3 residual blocks with BatchNorm; transformer: patch Linear, LayerNorm, attention, MLP; "
                   "vit: two nn.TransformerEncoderLayer blocks; resnet18_32x32: the zoo's CIFAR ResNet-18, 32x32x3.")
@click.option("--quick", is_flag=True, help="Only (a), (a''), (b), (c): no naive loop, vmap or memory.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the figures (images/s, ratios) as JSON.")
@click.option("--memory-child", type=int, default=None, hidden=True)
def main(n, rounds, threads, chunk_size, naive_n, vmap_chunk, memory_n, model_name, quick, json_path, memory_child):
    configure(threads)  # as the stages run: deterministic algorithms; oneDNN off where the kernels are pinned
    if memory_child is not None:
        print(json.dumps(peak_memory_child(memory_child, chunk_size, threads, model_name)))
        return
    model, images = make_inputs(n, model_name)
    model_channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    methods = {
        "a plain forward+backward": (plain, model, images, chunk_size),
        "a' plain, chunk 256": (plain, model, images, 256),
        "a'' plain, channels-last model": (plain, model_channels_last, images, chunk_size),
        "b gradmeta paper stats": (engine(PAPER_STATISTICS), model, images, chunk_size),
        "c gradmeta norms (l1,l2)": (engine(("l1", "l2")), model, images, chunk_size),
        "d naive per-sample loop": (naive, model, images[:naive_n], 1),
        "e torch.func vmap(grad)": (vmap_grad, model, images[: max(vmap_chunk, n // 4)], vmap_chunk),
    }
    if quick:
        for name in ("a' plain, chunk 256", "d naive per-sample loop", "e torch.func vmap(grad)"):
            del methods[name]
        memory_n = ()
    for fn, net, x, chunk in methods.values():  # warm-up
        fn(net, x[: min(len(x), 2 * chunk)], chunk)
    per_image: dict[str, list[float]] = {k: [] for k in methods}  # seconds per image, per round
    for _ in range(rounds):
        for name, (fn, net, x, chunk) in methods.items():
            start = time.perf_counter()
            fn(net, x, chunk)
            per_image[name].append((time.perf_counter() - start) / len(x))
    best = {k: min(v) for k, v in per_image.items()}
    figures = report(per_image, model_name, n, chunk_size, threads, rounds)
    if json_path:
        with open(json_path, "w") as fh:
            json.dump({"model": model_name, "n": n, "rounds": rounds, "chunk_size": chunk_size, "threads": threads,
                       "kernels": kernels_mode(), "aten_capability": torch.backends.cpu.get_cpu_capability(),
                       "onednn": torch.backends.mkldnn.enabled, "methods": figures}, fh, indent=1)
    if quick:
        return
    engine_s = best["b gradmeta paper stats"]
    plain256_s, plain_cl_s = best["a' plain, chunk 256"], best["a'' plain, channels-last model"]
    print(f"(b) vs naive loop: {best['d naive per-sample loop'] / engine_s:.1f}x; "
          f"(b) vs (a') plain at chunk 256: {plain256_s / engine_s:.2f}x; "
          f"(b) vs (a'') plain, channels-last model: {plain_cl_s / engine_s:.2f}x")
    print("peak memory of the engine (paper statistics), fresh process per N:")
    for mn in memory_n:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(mn), "--chunk-size", str(chunk_size),
                              "--threads", str(threads), "--model", model_name], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  N={r['n']:6d}: RSS before {r['rss_before_mb']:6.1f} MB (process + model + images), "
              f"peak during the call {r['peak_rss_mb']:6.1f} MB, increase {r['engine_increase_mb']:6.1f} MB")


if __name__ == "__main__":
    main()
