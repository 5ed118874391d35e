"""The CPU kernel pins (gradmeta.core.kernels, gradmeta.core.process): what they set, what they say, when they refuse."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from stage_runner import ROOT

from gradmeta.core import kernels
from gradmeta.core.errors import GradmetaError

V3_FLAGS = {"sse4_2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "abm", "avx512f"}


def test_pins_override_the_environment_and_say_so_once_per_variable():
    env = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "COMPATIBLE", "NPY_DISABLE_CPU_FEATURES": "X86_V4",
           "PATH": "/bin"}
    notices = kernels.pin_kernels(env, flags=V3_FLAGS, machine="x86_64")
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_CBWR"] == "COMPATIBLE"
    numpy_version = tuple(int(part) for part in np.__version__.split(".")[:2])
    v3 = "X86_V3" if numpy_version >= (2, 4) else "SSE SSE2 SSE3 SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2"  # its names
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["NPY_ENABLE_CPU_FEATURES"] == v3
    assert "NPY_DISABLE_CPU_FEATURES" not in env  # numpy refuses to start with both set
    assert env["PATH"] == "/bin"
    assert len(notices) == 2  # MKL_CBWR already had the pinned value: nothing to say
    assert notices[0].startswith("ATEN_CPU_CAPABILITY=avx512 in the environment is overridden so that results are "
                                 "the same on every CPU") and "GRADMETA_NATIVE_KERNELS=1" in notices[0]
    assert notices[1].startswith("NPY_DISABLE_CPU_FEATURES=X86_V4 in the environment is overridden")
    assert kernels.kernels_mode(env) == kernels.PINNED


def test_a_cpu_without_the_pinned_level_is_refused_in_one_line_naming_the_opt_out():
    env: dict[str, str] = {}
    with pytest.raises(GradmetaError) as err:
        kernels.pin_kernels(env, flags={"sse4_2", "avx"}, machine="x86_64")
    message = str(err.value)
    assert "\n" not in message and "lacks abm, avx2, bmi1, bmi2, f16c, fma, movbe" in message
    assert "GRADMETA_NATIVE_KERNELS=1" in message
    assert env == {}  # nothing set


@pytest.mark.parametrize("value, native", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_opt_out_leaves_the_environment_alone_and_is_recorded_as_native(value, native):
    env = {"GRADMETA_NATIVE_KERNELS": value, "ATEN_CPU_CAPABILITY": "avx512"}
    kernels.pin_kernels(env, flags=V3_FLAGS, machine="x86_64")
    assert (env["ATEN_CPU_CAPABILITY"] == "avx512") is native
    assert kernels.kernels_mode(env) == (kernels.NATIVE if native else kernels.PINNED)


def test_another_architecture_runs_natively_and_says_so():
    env: dict[str, str] = {}
    assert kernels.pin_kernels(env, flags=set(), machine="aarch64") == [] and env == {}
    assert kernels.kernels_mode(env) == kernels.NATIVE


def test_cpu_flags_read_from_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse avx2 fma\n")
    assert kernels.cpu_flags(info) == {"fpu", "sse", "avx2", "fma"}
    assert kernels.cpu_flags(tmp_path / "missing") is None


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("GRADMETA_NATIVE_KERNELS", *kernels.pinned_environment())}
    return subprocess.run([sys.executable, "-c", code], env={**full, **env}, capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)


PROBE = """
from gradmeta.core.process import prepare_process
prepare_process()
import numpy, torch, threadpoolctl, scipy.linalg
from gradmeta.runtime import configure
configure(1)
blas = sorted({i.get('architecture') for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'})
print(torch.backends.cpu.get_cpu_capability(), torch.backends.mkldnn.enabled, blas)
"""


@pytest.mark.skipif(kernels.cpu_flags() is None or not set(kernels.REQUIRED_FLAGS) <= kernels.cpu_flags(),
                    reason="needs an x86-64-v3 CPU")
def test_a_stage_process_runs_the_pinned_kernels_and_a_native_one_does_not():
    """The libraries themselves report the level they run: torch's ATen capability, oneDNN, OpenBLAS's core."""
    pinned = _python(PROBE, ATEN_CPU_CAPABILITY="default")
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout.split("\n")[-2] == "AVX2 False ['Haswell']"
    assert pinned.stderr.count("ATEN_CPU_CAPABILITY=default in the environment is overridden") == 1
    native = _python(PROBE, ATEN_CPU_CAPABILITY="default", GRADMETA_NATIVE_KERNELS="1")
    assert native.returncode == 0 and native.stdout.split()[0:2] == ["DEFAULT", "True"], native.stderr
    assert native.stderr == ""


def test_pinning_after_numpy_loaded_is_an_error_not_a_silent_no_op():
    proc = _python("import numpy\nfrom gradmeta.core.process import prepare_process\nprepare_process()")
    if kernels.cpu_flags() is None:
        pytest.skip("no /proc/cpuinfo")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: numpy loaded before gradmeta pinned the CPU kernels")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "GRADMETA_NATIVE_KERNELS=1" in proc.stderr and "PYTHONSTARTUP" in proc.stderr  # what a stage user can do
    assert "gradmeta.core.kernels.pin_kernels()" in proc.stderr  # what a library user can do


@pytest.mark.parametrize("value", ["off", "n", "00", "0.0", "on?"])
def test_an_opt_out_value_that_is_not_documented_is_refused_not_guessed(value):
    with pytest.raises(GradmetaError, match=f"GRADMETA_NATIVE_KERNELS='{re.escape(value)}' is not understood"):
        kernels.pin_kernels({"GRADMETA_NATIVE_KERNELS": value}, flags=V3_FLAGS, machine="x86_64")


@pytest.mark.parametrize("value, native", [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("", False),
                                           ("false", False), (" no ", False)])
def test_the_documented_opt_out_values(value, native):
    assert kernels.native_requested({"GRADMETA_NATIVE_KERNELS": value}) is native


def test_a_stage_with_an_undocumented_opt_out_value_stops_with_one_line():
    proc = _python("from gradmeta.core.process import prepare_process\nprepare_process()", GRADMETA_NATIVE_KERNELS="off")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: GRADMETA_NATIVE_KERNELS='off' is not understood: set it to 1 (native kernels, not reproducible "
        "across CPUs) or 0 / leave it unset (the pinned kernels)"]


def test_importing_gradmeta_changes_nothing_in_the_process():
    proc = _python("import os, json; before = dict(os.environ); import gradmeta, gradmeta.core.kernels; "
                   "print(json.dumps(dict(os.environ) == before))")
    assert proc.stdout.strip() == "true", proc.stderr
