"""Which numerical kernels a stage process runs: one x86-64 level on every CPU, so every CPU writes the same bytes.

torch, numpy, OpenBLAS, MKL and oneDNN pick their code paths at run time from the CPU they find (AVX-512 on one
machine, AVX2 on the next), and paths of different vector widths sum in different orders: the same stage on two
CPUs writes different bytes, so a commit's ``dvc.lock`` would hold on one kind of CPU only. A stage process (and
the ``gradmeta`` command) therefore pins every library that dispatches at run time to a level every x86-64-v3
CPU (AVX2, FMA: Intel since Haswell, AMD since Zen 1) runs the same way, before any of them loads, overriding
what the environment says:

=============================  ==============  ==========================================================
variable                       value           what it pins
=============================  ==============  ==========================================================
``MKL_CBWR``                   ``COMPATIBLE``  Intel MKL (torch's BLAS): the one branch MKL keeps the same on
                                               Intel and AMD CPUs (``AVX2`` holds on Intel CPUs only; MKL
                                               runs its automatic branch elsewhere)
``ATEN_CPU_CAPABILITY``        ``avx2``        torch's own vectorised kernels (reductions, activations, softmax)
``NPY_ENABLE_CPU_FEATURES``    ``X86_V3``      numpy's dispatched SIMD loops (numpy >= 2.4 names the level)
``OPENBLAS_CORETYPE``          ``Haswell``     the OpenBLAS of numpy and scipy (scikit-learn's BLAS)
``ARROW_USER_SIMD_LEVEL``      ``AVX2``        Arrow (Parquet writing; measured to change no byte, pinned all
                                               the same)
=============================  ==============  ==========================================================

``NPY_DISABLE_CPU_FEATURES`` is removed (numpy refuses both variables at once). Besides these,
:func:`gradmeta.runtime.configure` switches torch's oneDNN and NNPACK convolutions off in a pinned process:
their kernels and blockings follow the CPU's vendor and caches, not only its instruction set, so even capped at
one level (``ONEDNN_MAX_CPU_ISA``) they may sum in another order on another CPU; convolutions then run as ATen's
im2col + MKL GEMM. XGBoost, scikit-learn's own code, scipy's special functions, Pillow and matplotlib do not
dispatch at run time.

``GRADMETA_NATIVE_KERNELS=1`` opts out: every library runs what it finds fastest on this CPU, and what the stages
write (``train.json``, the features' metadata, the report) says "native kernels: not reproducible across CPUs".

This module imports nothing numerical: it must run before numpy or torch is loaded.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from collections.abc import MutableMapping
from pathlib import Path

from gradmeta.core.errors import GradmetaError

OPT_OUT = "GRADMETA_NATIVE_KERNELS"
LEVEL = "x86-64-v3 (AVX2, FMA)"
PINNED = f"pinned to {LEVEL}: the same bytes on every x86-64 CPU"
NATIVE = "native kernels: not reproducible across CPUs"

# CPU flags (as /proc/cpuinfo names them) of the x86-64-v3 level the pins below assume.
REQUIRED_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "abm")

# Variables that would contradict the pins: removed from a pinned process's environment (numpy refuses to start
# with both NPY_ENABLE_CPU_FEATURES and NPY_DISABLE_CPU_FEATURES set).
CLEARED = ("NPY_DISABLE_CPU_FEATURES",)

# numpy < 2.4 names its dispatch targets one feature at a time.
_NUMPY_LEGACY_V3 = "SSE SSE2 SSE3 SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2"


@functools.cache
def _numpy_level() -> str:
    """numpy's name for the pinned level (read once: the installed numpy does not change in a process)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("numpy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return "X86_V3"
    return "X86_V3" if (major, minor) >= (2, 4) else _NUMPY_LEGACY_V3


def pinned_environment() -> dict[str, str]:
    """The variables (name -> value) a pinned process runs with; see the module docstring."""
    return {
        "MKL_CBWR": "COMPATIBLE",
        "ATEN_CPU_CAPABILITY": "avx2",
        "NPY_ENABLE_CPU_FEATURES": _numpy_level(),
        "OPENBLAS_CORETYPE": "Haswell",
        "ARROW_USER_SIMD_LEVEL": "AVX2",
    }


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags as Linux lists them, or None where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


OPT_OUT_ON = ("1", "true", "yes")  # GRADMETA_NATIVE_KERNELS values that run natively (case ignored)
OPT_OUT_OFF = ("", "0", "false", "no")  # values (and unset) that keep the pins


def native_requested(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when the user opted out of the pins: ``GRADMETA_NATIVE_KERNELS`` is 1, true or yes (0, false, no,
    empty or unset keep them). Any other value (``off``, ``n``, ``00``, ...) is a :class:`GradmetaError`:
    a guess at what it means could run the other way than the user wanted."""
    raw = (os.environ if environ is None else environ).get(OPT_OUT, "")
    value = raw.strip().lower()
    if value in OPT_OUT_ON:
        return True
    if value in OPT_OUT_OFF:
        return False
    raise GradmetaError(f"{OPT_OUT}={raw[:40]!r} is not understood: set it to 1 (native kernels, not reproducible "
                        "across CPUs) or 0 / leave it unset (the pinned kernels)")


def kernels_mode(environ: MutableMapping[str, str] | None = None) -> str:
    """What this process runs, in the words the outputs record: :data:`PINNED` or :data:`NATIVE`."""
    env = os.environ if environ is None else environ
    pinned = pinned_environment()
    return PINNED if all(env.get(k) == v for k, v in pinned.items()) and not native_requested(env) else NATIVE


def is_pinned() -> bool:
    """True when this process runs the pinned kernels (:func:`pin_kernels` was called and not opted out)."""
    return kernels_mode() == PINNED


def pin_kernels(environ: MutableMapping[str, str] | None = None, flags: set[str] | None = None,
                machine: str | None = None) -> list[str]:
    """Pin the numerical libraries' CPU dispatch in ``environ`` (default: this process's environment) before
    they load; returns one notice per variable whose value from the environment was overridden (empty when
    nothing was). Does nothing with the opt-out set, or on a CPU that is not x86-64 (no pins apply there).

    Raises :class:`GradmetaError` (one line, naming the opt-out) on an x86-64 CPU without the pinned level, and
    when numpy or torch was loaded before the pins (they would not take effect).
    """
    env = os.environ if environ is None else environ
    if native_requested(env) or (machine or platform.machine()).lower() not in ("x86_64", "amd64"):
        return []
    flags = cpu_flags() if flags is None else flags
    missing = sorted(set(REQUIRED_FLAGS) - flags) if flags is not None else []
    if missing:
        raise GradmetaError(f"this CPU lacks {', '.join(missing)} of {LEVEL}, the level gradmeta pins its numerical "
                            f"libraries to so that results are the same on every CPU; set {OPT_OUT}=1 to run "
                            "natively (results are then not reproducible across CPUs)")
    if environ is None:
        loaded = [name for name in ("numpy", "torch") if name in sys.modules]
        if loaded:
            raise GradmetaError(f"{' and '.join(loaded)} loaded before gradmeta pinned the CPU kernels (something in "
                                "this environment imports it at start-up: PYTHONSTARTUP, a sitecustomize or .pth "
                                f"file); remove that, or set {OPT_OUT}=1 to run natively (not reproducible across "
                                "CPUs); in your own code, call gradmeta.core.kernels.pin_kernels() before importing them")
    notices = []
    wanted: dict[str, str | None] = {**pinned_environment(), **dict.fromkeys(CLEARED)}
    for name, value in wanted.items():
        found = env.get(name)
        if found is not None and found != value:
            notices.append(f"{name}={found} in the environment is overridden so that results are the same on every "
                           f"CPU; set {OPT_OUT}=1 to run natively (not reproducible across CPUs)")
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return notices
