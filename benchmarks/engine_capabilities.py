"""The engine benchmark (gradient_engine.py --quick) for every model under every CPU code path this CPU can run.

Each (kernels, model) pair is a fresh process, since the dispatch variables act when torch loads:

- ``pinned``: what the stages run (gradmeta.core.kernels: ATen at AVX2, MKL's COMPATIBLE branch, oneDNN and
  NNPACK off), the same code path on every x86-64-v3 CPU;
- ``native``: everything as torch finds it on this CPU (ATen's highest capability, oneDNN at its highest ISA);
- ``avx2``: natively but with ATen and oneDNN capped at AVX2 (``ATEN_CPU_CAPABILITY=avx2``,
  ``ONEDNN_MAX_CPU_ISA=AVX2``), as on a CPU without AVX-512;
- ``default``: ATen's scalar-vectorised default kernels and oneDNN at SSE4.1, the lowest either allows.

Prints one line per pair (the median over rounds of the per-round ratio to the plain forward + backward, and
the best-round ratio) and a markdown table; ``--json`` keeps every figure.

    python benchmarks/engine_capabilities.py [--models default,conv-heavy,resnet,transformer,vit] [--rounds 5]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from gradmeta.core.kernels import OPT_OUT, pinned_environment  # noqa: E402  (imports nothing numerical)

ENGINE = "b gradmeta paper stats"
NORMS = "c gradmeta norms (l1,l2)"
PLAIN = "a plain forward+backward"
CONFIGS = {
    "pinned": {**pinned_environment(), OPT_OUT: None},
    "native": {OPT_OUT: "1"},
    "avx2": {OPT_OUT: "1", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {OPT_OUT: "1", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
DISPATCH = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "NPY_ENABLE_CPU_FEATURES", "OPENBLAS_CORETYPE",
            "ARROW_USER_SIMD_LEVEL", OPT_OUT)


def environment_for(config: str) -> dict[str, str]:
    """This process's environment with the dispatch variables of ``config`` only."""
    env = {k: v for k, v in os.environ.items() if k not in DISPATCH}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update({k: v for k, v in CONFIGS[config].items() if v is not None})
    return env


def run_one(config: str, model: str, n: int, rounds: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        subprocess.run([sys.executable, str(HERE / "gradient_engine.py"), "--quick", "--model", model, "--n", str(n),
                        "--rounds", str(rounds), "--threads", str(threads), "--json", str(out)],
                       env=environment_for(config), check=True, capture_output=True, text=True)
        return json.loads(out.read_text())


@click.command()
@click.option("--models", default="default,conv-heavy,resnet,transformer,vit", show_default=True)
@click.option("--configs", default=",".join(CONFIGS), show_default=True)
@click.option("--n", default=2048, show_default=True)
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def main(models: str, configs: str, n: int, rounds: int, threads: int, json_path: str | None) -> None:
    chosen_models, chosen_configs = models.split(","), configs.split(",")
    results: dict[str, dict[str, dict]] = {}
    for model in chosen_models:
        for config in chosen_configs:
            r = run_one(config, model, n, rounds, threads)
            results.setdefault(model, {})[config] = r
            m = r["methods"]
            print(f"{model:12s} {config:8s} ATen {r['aten_capability']:8s} oneDNN {'on ' if r['onednn'] else 'off'} "
                  f"plain {m[PLAIN]['images_per_s']:6.0f}/s  engine {m[ENGINE]['median_ratio']:.2f}x median "
                  f"({m[ENGINE]['best_ratio']:.2f}x best)  norms {m[NORMS]['median_ratio']:.2f}x", flush=True)
    print("\n| model | " + " | ".join(f"{c}: plain img/s, (b) median / best" for c in chosen_configs) + " |")
    print("|---|" + "---:|" * len(chosen_configs))
    for model in chosen_models:
        cells = []
        for config in chosen_configs:
            m = results[model][config]["methods"]
            cells.append(f"{m[PLAIN]['images_per_s']:.0f}, {m[ENGINE]['median_ratio']:.2f}x / {m[ENGINE]['best_ratio']:.2f}x")
        print(f"| {model} | " + " | ".join(cells) + " |")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
