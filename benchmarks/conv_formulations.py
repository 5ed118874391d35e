"""Per-sample convolution weight gradients: each formulation against the summed gradient, per layer, in one process.

For every Conv2d of the benchmark models (architectures.py), on a block of ``--block`` samples with the input
and output-gradient shapes the layer sees on 28x28 images: the time of each formulation the conv rule knows
(:data:`gradmeta.uncertainty.gradients.rules.conv.FORMULATIONS`; the ones that do not apply to the layer are
skipped), and of the summed weight gradient (what a plain backward computes for the layer), interleaved over
rounds; printed are the median time per sample and the ratio to the summed gradient. Run it under each code
path (see engine_capabilities.py) to see which formulation wins where:

    python benchmarks/conv_formulations.py [--models default,conv-heavy,resnet] [--block 16] [--rounds 7]
"""

from __future__ import annotations

import statistics
import time

import click
import torch
from architectures import build

from gradmeta.core.kernels import kernels_mode
from gradmeta.runtime import configure
from gradmeta.uncertainty.gradients.rules.conv import FORMULATIONS


def conv_calls(model: torch.nn.Module, block: int) -> list[tuple[str, torch.nn.Conv2d, torch.Tensor, torch.Tensor]]:
    """(name, conv, input, output gradient) of every Conv2d for a block of random 28x28 images, in the layout the
    engine runs them (channels-last outputs on the CPU)."""
    found = []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: found.append((name, m, i[0].detach(), o.detach())))
             for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.rand(block, 1, 28, 28).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    return [(name, conv, a.contiguous(memory_format=torch.channels_last),
             torch.randn_like(out).contiguous(memory_format=torch.channels_last)) for name, conv, a, out in found]


def summed(conv: torch.nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.convolution_backward(g, a, conv.weight, None, conv.stride, conv.padding, conv.dilation,
                                               False, (0, 0), conv.groups, (False, True, False))[1]


@click.command()
@click.option("--models", default="default,conv-heavy,resnet", show_default=True)
@click.option("--block", default=16, show_default=True)
@click.option("--rounds", default=7, show_default=True)
@click.option("--threads", default=2, show_default=True)
def main(models: str, block: int, rounds: int, threads: int) -> None:
    configure(threads)
    print(f"{kernels_mode()}; ATen {torch.backends.cpu.get_cpu_capability()}, "
          f"oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'}; block of {block} samples, median of {rounds}")
    for model_name in models.split(","):
        for name, conv, a, g in conv_calls(build(model_name), block):
            ways = {"summed": summed, **{k: f.compute for k, f in FORMULATIONS.items() if f.applies(conv)}}
            times: dict[str, list[float]] = {k: [] for k in ways}
            for _ in range(rounds + 1):  # the first round warms up
                for k, f in ways.items():
                    start = time.perf_counter()
                    f(conv, a, g)
                    times[k].append(time.perf_counter() - start)
            medians = {k: statistics.median(v[1:]) for k, v in times.items()}
            cells = "  ".join(f"{k} {medians[k] / block * 1e6:7.1f} us ({medians['summed'] / medians[k]:.2f}x)"
                              for k in ways)
            print(f"{model_name:10s} {name:22s} {tuple(conv.weight.shape)!s:18s} in {tuple(a.shape[1:])!s:14s} {cells}")


if __name__ == "__main__":
    main()
