"""End to end: `dvc repro` of the tiny profile in a throw-away git + DVC repository."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradmeta.features import read_features
from stage_runner import ROOT

pytestmark = pytest.mark.slow

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def sh(repo: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(list(cmd), cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def outputs_digest(repo: Path) -> dict[str, str]:
    files = [p for d in ("data/prepared", "data/features", "models", "metrics") for p in sorted((repo / d).rglob("*")) if p.is_file()]
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("pipeline")
    for item in ("dvc.yaml", "stages", "src"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / item)
    shutil.copy(ROOT / "tests" / "profiles" / "tiny.yaml", repo / "params.yaml")
    (repo / ".gitignore").write_text("/data/\n/models/\n__pycache__/\n")
    sh(repo, "git", "init", "-q")
    sh(repo, sys.executable, "-m", "dvc", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "init")
    sh(repo, sys.executable, "-m", "dvc", "repro")
    return repo


def test_repro_writes_every_output(pipeline_repo):
    repo = pipeline_repo
    for concept in ("digits", "letters", "omniglot", "cifar10", "noise"):
        assert (repo / "data" / "prepared" / f"{concept}.npz").is_file()
        assert (repo / "metrics" / "samples" / f"{concept}.png").is_file()
    train = json.loads((repo / "metrics" / "train.json").read_text())
    assert train["source"] == "synthetic" and train["test_size"] == 200
    assert train["test_errors"] == round((1 - train["test_accuracy"]) * 200)
    assert train["test_accuracy"] > 0.3  # two epochs of a tiny CNN on 900 images; chance is 0.1
    curve = json.loads((repo / "metrics" / "train_curve.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2]
    digits, meta = read_features(repo / "data" / "features" / "digits.parquet")
    assert len(digits) == 200 and meta["source"] == "synthetic"
    assert meta["model_sha256"] == hashlib.sha256((repo / "models" / "cnn.pt").read_bytes()).hexdigest()
    assert int((~digits["correct"]).sum()) == train["test_errors"]
    for concept in ("letters", "omniglot", "cifar10", "noise"):
        frame, _ = read_features(repo / "data" / "features" / f"{concept}.parquet")
        assert len(frame) == 60 and not frame["correct"].any()


def test_second_repro_is_a_no_op_and_forced_repro_is_byte_identical(pipeline_repo):
    repo = pipeline_repo
    before = outputs_digest(repo)
    again = sh(repo, sys.executable, "-m", "dvc", "repro")
    assert "Running stage" not in again.stdout
    sh(repo, sys.executable, "-m", "dvc", "repro", "-f")
    assert outputs_digest(repo) == before
