"""Same bytes on every x86 CPU: every stage, run under the dispatch levels other CPUs would pick by themselves,
writes byte-identical outputs (the pins of gradmeta.core.kernels); without the pins it does not.

Another CPU is emulated by the libraries' own variables set to what it would choose: ATen's capability, MKL's
branch and instruction set, oneDNN's ISA, numpy's SIMD targets, OpenBLAS's core type (as far as this CPU can run
them). Variables the pins set are overridden; those they do not set (MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA)
must not matter, because the pinned path does not use what they select.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from stage_runner import ROOT, TINY

from gradmeta.core import kernels

pytestmark = pytest.mark.slow

FLAGS = kernels.cpu_flags() or set()
HAS_AVX512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= FLAGS

# An AVX-512 server (as far as this CPU has AVX-512) and an older or more cautious machine.
WIDE = ({"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512",
         "OPENBLAS_CORETYPE": "SkylakeX"} if HAS_AVX512 else
        {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Zen"})
NARROW = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "SSE41",
          "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Sandybridge"}
CONCEPTS = ("digits", "noise")


def _params(folder: Path) -> None:
    params = {k: dict(v) for k, v in TINY.items()}
    params["data"]["concepts"] = {"digits": {"source": "emnist_digits", "train": 400, "test": 96},
                                  "noise": {"source": "uniform_noise", "test": 64}}
    params["train"].update(epochs=1)
    params["meta"].update(repeats=2, n_jobs=1)
    params["evaluate"].update(remote_concepts=["noise"])
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _stage(folder: Path, env: dict[str, str], name: str, *args: str) -> None:
    base = {k: v for k, v in os.environ.items()
            if k not in ("GRADMETA_NATIVE_KERNELS", "NPY_DISABLE_CPU_FEATURES", *kernels.pinned_environment())}
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args], cwd=folder,
                          env={**base, "TQDM_DISABLE": "1", **env}, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"{name} {args} under {env}:\n{proc.stderr}"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in ("data", "models", "metrics") for p in sorted((folder / d).rglob("*")) if p.is_file()}


def _pipeline(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """Every stage of the tiny pipeline (two concepts) in ``folder`` under ``env``; the sha256 of every output."""
    folder.mkdir()
    _params(folder)
    for concept in CONCEPTS:
        _stage(folder, env, "download", "--concept", concept)
    _stage(folder, env, "train")
    _stage(folder, env, "detectors")
    for concept in CONCEPTS:
        _stage(folder, env, "extract", "--concept", concept)
    _stage(folder, env, "meta")
    _stage(folder, env, "evaluate")
    return _digest(folder)


@pytest.mark.skipif(not set(kernels.REQUIRED_FLAGS) <= FLAGS, reason="needs an x86-64-v3 CPU with /proc/cpuinfo")
def test_every_stage_writes_the_same_bytes_under_every_cpu_emulation_and_not_without_the_pins(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        wide, narrow = pool.map(lambda item: _pipeline(tmp_path / item[0], item[1]),
                                [("wide", WIDE), ("narrow", NARROW)])
    assert len(wide) >= 20  # npz, model, detectors, parquet parts, meta, metrics, report, plots, figures
    assert wide == narrow, sorted(k for k in wide if wide[k] != narrow.get(k))

    # The test can fail: the train stage on the same prepared data, with the pins opted out, writes another
    # model under each emulation (ATen's default kernels sum in another order than its vectorised ones).
    models = {}
    for name, env in (("wide", WIDE), ("narrow", NARROW)):
        folder = tmp_path / f"native-{name}"
        folder.mkdir()
        _params(folder)
        (folder / "data" / "prepared").mkdir(parents=True)
        (folder / "data" / "prepared" / "digits.npz").write_bytes((tmp_path / "wide/data/prepared/digits.npz").read_bytes())
        _stage(folder, {**env, "GRADMETA_NATIVE_KERNELS": "1"}, "train")
        models[name] = (folder / "models" / "cnn.pt").read_bytes()
        assert "native kernels: not reproducible across CPUs" in (folder / "metrics" / "train.json").read_text()
    assert models["wide"] != models["narrow"]
    report = (tmp_path / "wide" / "metrics" / "report.md").read_text()
    assert f"**Kernels:** {kernels.PINNED}." in report
