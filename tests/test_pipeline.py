"""End to end: `dvc repro` of the tiny profile in a throw-away git + DVC repository."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from stage_runner import ROOT

from gradmeta.features import read_features

pytestmark = pytest.mark.slow

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def sh(repo: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(list(cmd), cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def outputs_digest(repo: Path) -> dict[str, str]:
    folders = ("data/prepared", "data/features", "models", "metrics")
    files = [p for d in folders for p in sorted((repo / d).rglob("*")) if p.is_file()]
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
    shutil.copy(ROOT / ".dvcignore", repo / ".dvcignore")
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
    assert train["test_accuracy"] > 0.2  # two epochs of a tiny CNN on 900 images (0.37 here); chance is 0.1
    curve = json.loads((repo / "metrics" / "train_curve.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2]
    digits, meta = read_features(repo / "data" / "features" / "digits.parquet")
    assert len(digits) == 200 and meta["source"] == "synthetic"
    assert meta["model_sha256"] == hashlib.sha256((repo / "models" / "cnn.pt").read_bytes()).hexdigest()
    assert int((~digits["correct"]).sum()) == train["test_errors"]
    for concept in ("letters", "omniglot", "cifar10", "noise"):
        frame, _ = read_features(repo / "data" / "features" / f"{concept}.parquet")
        assert len(frame) == 60 and not frame["correct"].any()
    scenarios = json.loads((repo / "metrics" / "scenarios.json").read_text())
    assert scenarios["cnn"]["digits"]["errors"] == train["test_errors"]
    auroc = scenarios["misclassification"]["digits"]["softmax/entropy"]["threshold"]["auroc"]
    assert 0.5 < auroc <= 1.0
    measures = pd.read_csv(repo / "metrics" / "measures.csv", keep_default_na=False)
    row = measures[(measures.scenario == "misclassification") & (measures.input == "softmax/entropy")
                   & (measures.classifier == "threshold")].iloc[0]
    assert auroc == pytest.approx(row.auroc_mean, abs=1.0001e-4)
    # two different random splits give different AUROCs: a std of 0 would mean the repeats are not repeats
    assert row.auroc_std > 0.0
    assert set(scenarios["known_unknowns"]) == {"seen"} and "pooled" in scenarios["known_unknowns"]["seen"]
    assert set(scenarios["unknown"]) == {"letters", "omniglot", "cifar10", "noise", "pooled"}
    assert set(scenarios["claims"]) == {"a", "b", "c", "d"} and set(scenarios["claims"].values()) <= {0, 1}
    numbers = [v for v in pd.json_normalize(scenarios).iloc[0]]
    assert 20 <= len(numbers) <= 80  # headline numbers only; measures.csv has the rest
    report = (repo / "metrics" / "report.md").read_text()
    assert "Data source: SYNTHETIC" in report
    verdicts = re.findall(r"\*\*\((a|b|c|d)\) (holds|does not hold)\.\*\*", report)
    assert len(verdicts) == 4
    assert {c: int(word == "holds") for c, word in verdicts} == scenarios["claims"]
    assert (repo / "metrics" / "figures" / "roc_misclassification.png").is_file()
    header = (repo / "metrics" / "measures.csv").read_text().splitlines()[0]
    assert header.startswith("scenario,test_set,group,input,classifier,accuracy_mean")


def test_exp_run_of_a_meta_param_reruns_only_meta_and_evaluate(pipeline_repo):
    repo = pipeline_repo
    params = (repo / "params.yaml").read_text()
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline")
    try:
        out = sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "meta.classifiers=[xgboost]").stdout
        assert re.findall(r"Running stage '([^']+)'", out) == ["meta", "evaluate"]
        scenarios = json.loads((repo / "metrics" / "scenarios.json").read_text())
        assert set(scenarios["misclassification"]["digits"]["gradient"]) == {"xgboost"}
        diff = sh(repo, sys.executable, "-m", "dvc", "metrics", "diff").stdout
        assert "misclassification.digits.gradient.logistic.auroc" in diff
    finally:
        (repo / "params.yaml").write_text(params)
        sh(repo, sys.executable, "-m", "dvc", "repro")


def test_second_repro_is_a_no_op_and_forced_repro_is_byte_identical(pipeline_repo):
    repo = pipeline_repo
    before = outputs_digest(repo)
    again = sh(repo, sys.executable, "-m", "dvc", "repro")
    assert "Running stage" not in again.stdout
    sh(repo, sys.executable, "-m", "dvc", "repro", "-f")
    assert outputs_digest(repo) == before


def test_a_change_to_the_meta_code_makes_meta_and_evaluate_stale(pipeline_repo):
    """The scoring code of the fitted classifiers is a dep of evaluate too (a pickle holds no code)."""
    repo = pipeline_repo
    estimators = repo / "src" / "gradmeta" / "meta" / "estimators.py"
    original = estimators.read_text()
    try:
        estimators.write_text(original.replace("return self.sign_ * self._metric(X)", "return -self.sign_ * self._metric(X)"))
        assert estimators.read_text() != original
        stale = json.loads(sh(repo, sys.executable, "-m", "dvc", "status", "--json").stdout)
        assert {"meta", "evaluate"} <= set(stale)
        assert not {"download", "train"} & set(stale) and not any(s.startswith("extract") for s in stale)
    finally:
        estimators.write_text(original)
    assert json.loads(sh(repo, sys.executable, "-m", "dvc", "status", "--json").stdout) == {}
