"""Where the engine's time goes, against the plain forward + backward of the same model, in one process.

Runs the plain pass and the engine (paper statistics) alternately over rounds, with the engine's parts timed
by wrapping them: its batched forward (with the layers' outputs captured), its backward (autograd.grad to
the layers' outputs), each rule (per module type), and within the rules the per-sample convolution weight
gradients (the chosen formulation) and the float32 reductions of materialised gradients. Prints the medians
over rounds, in seconds and as shares of the plain pass, and which conv formulation each layer got. Run it
under each code path (the variables of engine_capabilities.py) to see which part loses where:

    python benchmarks/engine_breakdown.py [--model default] [--n 2048] [--rounds 5]
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Callable

import click
import torch
import torch.nn.functional as F
from architectures import MODELS, build

from gradmeta.core.kernels import kernels_mode
from gradmeta.runtime import configure
from gradmeta.uncertainty.gradients import PAPER_STATISTICS, engine, gradient_statistics
from gradmeta.uncertainty.gradients.rules import blocks, conv, formulations, registry

SPENT: collections.Counter = collections.Counter()


def timed(name: str, func: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start
    return wrapper


def instrument() -> None:
    """Wrap the engine's parts (the process is only ever used for this benchmark)."""
    engine._forward_capturing = timed("forward (captured)", engine._forward_capturing)
    engine._layer_moments = timed("rules (all)", engine._layer_moments)
    engine.chunk_table = timed("statistics table", engine.chunk_table)
    engine.generic_moments = timed("generic path", engine.generic_moments)
    blocks.raw_sums_into = timed("  float32 reductions", blocks.raw_sums_into)
    blocks.moments_of = timed("  float32 reductions", blocks.moments_of)
    for f in conv.FORMULATIONS.values():
        object.__setattr__(f, "compute", timed(f"  conv per-sample gradients ({f.name})", f.compute))
    for module_type, rule in list(registry._RULES.items()):
        registry._RULES[module_type] = registry.Rule(rule.name, timed(f" rule {rule.name}", rule.compute), rule.applies,
                                                     rule.sample_dims, rule.whole_call, rule.owns_submodules)
    grad = torch.autograd.grad

    def backward(*args, **kwargs):
        start = time.perf_counter()
        try:
            return grad(*args, **kwargs)
        finally:
            SPENT["autograd.grad (backward, and inside rules)"] += time.perf_counter() - start
    torch.autograd.grad = backward


@click.command()
@click.option("--model", "model_name", type=click.Choice(MODELS), default="default", show_default=True)
@click.option("--n", default=2048, show_default=True)
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--chunk-size", default=64, show_default=True)
def main(model_name: str, n: int, rounds: int, threads: int, chunk_size: int) -> None:
    configure(threads)
    model = build(model_name)
    images = (torch.rand(n, 1, 28, 28) > 0.8).float() * torch.rand(n, 1, 28, 28)

    def plain() -> None:
        for start in range(0, n, chunk_size):
            model.zero_grad(set_to_none=True)
            logits = model(images[start: start + chunk_size])
            F.cross_entropy(logits, logits.argmax(1), reduction="sum").backward()

    instrument()
    gradient_statistics(model, images[: 2 * chunk_size], PAPER_STATISTICS, chunk_size=chunk_size)  # warm up, measure
    plain()
    parts: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        start = time.perf_counter()
        plain()
        parts["plain forward+backward"].append(time.perf_counter() - start)
        SPENT.clear()
        start = time.perf_counter()
        gradient_statistics(model, images, PAPER_STATISTICS, chunk_size=chunk_size)
        parts["engine (total)"].append(time.perf_counter() - start)
        for name, seconds in SPENT.items():
            parts[name].append(seconds)
    reference = statistics.median(parts["plain forward+backward"])
    print(f"{model_name} model, N={n}, chunk {chunk_size}, {threads} threads, median of {rounds} rounds; {kernels_mode()}; "
          f"ATen {torch.backends.cpu.get_cpu_capability()}, oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'}")
    for name, values in parts.items():
        print(f"  {name:48s} {statistics.median(values):7.3f} s  {statistics.median(values) / reference:5.2f} of plain")
    print("  conv formulations:", sorted(set(formulations.chosen().values())) or "fixed (pinned)")


if __name__ == "__main__":
    main()
