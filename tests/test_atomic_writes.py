"""A write killed mid-way (kill -9) leaves a temporary file next to its output: the next write of that
output removes it, and DVC ignores such files, so an output folder's hash never counts one."""

from __future__ import annotations

import os
import subprocess
import sys

from stage_runner import ROOT

from gradmeta.core.atomic import write_bytes


def test_a_stale_temporary_file_of_the_same_output_is_removed(tmp_path):
    stale = tmp_path / ".part-0.parquet.k2j4x9.tmp"
    other = tmp_path / ".part-1.parquet.a8b7c6.tmp"  # another output's: not this write's business
    stale.write_bytes(b"half a file")
    other.write_bytes(b"half another")
    write_bytes(tmp_path / "part-0.parquet", b"whole")
    assert (tmp_path / "part-0.parquet").read_bytes() == b"whole"
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".part-1.parquet.a8b7c6.tmp", "part-0.parquet"]


def test_dvc_ignores_a_temporary_file_inside_an_output_folder():
    proc = subprocess.run([sys.executable, "-m", "dvc", "check-ignore", "data/features/digits/.part-0.parquet.k2j4x9.tmp",
                           "models/meta/.meta.npz.q1w2e3.tmp"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["data/features/digits/.part-0.parquet.k2j4x9.tmp", "models/meta/.meta.npz.q1w2e3.tmp"]
    kept = subprocess.run([sys.executable, "-m", "dvc", "check-ignore", "data/features/digits/part-0.parquet"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"},
                          check=False)
    assert kept.returncode == 1  # the output itself is not ignored
