"""What a stage script or the ``gradmeta`` command does first, before numpy, torch or XGBoost load.

Importing gradmeta as a library changes nothing in the user's process; the process-wide settings below are
made only by the entry points (``stages/*.py``, ``gradmeta.cli``), which call :func:`prepare_process` before
importing anything numerical. This module imports nothing numerical.
"""

from __future__ import annotations

import os
import sys

from gradmeta.core.errors import GradmetaError
from gradmeta.core.kernels import NATIVE, pin_kernels


def prepare_process(strict: bool = True) -> None:
    """Set the OpenMP wait policy and pin the numerical libraries' CPU kernels (:mod:`gradmeta.core.kernels`).

    OpenMP threads (torch's and XGBoost's) spin while they wait for work; on cores shared with other jobs
    that spinning makes every parallel region wait for threads that have no core, and a stage runs many
    times slower. The runtime reads the policy once, when torch or XGBoost first loads: ``PASSIVE`` unless
    the environment sets one. A dispatch variable overridden by the pins is said once on stderr; a CPU
    without the pinned level ends the process with one ``error:`` line (exit status 1).

    ``strict=False`` (the ``gradmeta`` command, which may be invoked inside a process that already loaded numpy
    or torch, e.g. a notebook or a test runner) runs natively there and says so, instead of refusing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    loaded = [name for name in ("numpy", "torch") if name in sys.modules]
    if loaded and not strict:
        print(f"gradmeta: {' and '.join(loaded)} already loaded in this process, so the CPU kernels cannot be pinned: "
              f"{NATIVE}", file=sys.stderr)
        return
    try:
        notices = pin_kernels()
    except GradmetaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    for notice in notices:
        print(f"gradmeta: {notice}", file=sys.stderr)
