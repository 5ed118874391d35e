"""Run a stage script as a user would: a subprocess in a working folder, returning (code, stdout, stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "tests" / "profiles" / "tiny.yaml").read_text())


def run_stage(name: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def write_params(path: Path, **overrides) -> Path:
    """Write the tiny profile with ``group={...}`` overrides merged one level deep."""
    params = {k: dict(v) for k, v in TINY.items()}
    for group, values in overrides.items():
        params.setdefault(group, {}).update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
