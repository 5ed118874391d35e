"""The stages' start-up line (``$GRADMETA_STARTUP_LOG``): the seconds from the process's start, read from
/proc, against a clock the test holds itself (a process that sleeps a known time before logging)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

CODE = """
import time
time.sleep(0.6)
from gradmeta.core.console import setup_logging
setup_logging("stage@x").info("work")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux's /proc")
def test_the_start_up_line_counts_from_the_process_start_and_only_when_asked():
    env = {**os.environ, "GRADMETA_STARTUP_LOG": "1"}
    err = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True).stderr
    lines = err.strip().splitlines()
    hit = re.fullmatch(r"stage@x: start-up (\d+\.\d+) s", lines[0])
    assert hit and lines[1] == "stage@x: work", err
    assert 0.6 <= float(hit.group(1)) < 10.0  # the sleep, plus the interpreter's own start
    quiet = {k: v for k, v in os.environ.items() if k != "GRADMETA_STARTUP_LOG"}
    err = subprocess.run([sys.executable, "-c", CODE], env=quiet, capture_output=True, text=True, check=True).stderr
    assert err.strip().splitlines() == ["stage@x: work"]
