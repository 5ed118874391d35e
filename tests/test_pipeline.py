"""End to end: `dvc repro` of the tiny profile in a throw-away git + DVC repository."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dvc_repo import dvc, new_repo, outputs_digest, sh
from PIL import Image
from stage_runner import ROOT

from gradmeta.features import read_concept_features

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def built_repo(tmp_path_factory) -> Path:
    """The tiny profile reproduced once (outputs, cache and run-cache) and committed with its dvc.lock."""
    repo = new_repo(tmp_path_factory.mktemp("pipeline"), (ROOT / "tests" / "profiles" / "tiny.yaml").read_text())
    dvc(repo, "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "reproduced")
    return repo


@pytest.fixture
def pipeline_repo(built_repo, tmp_path) -> Path:
    """A test's own copy of the reproduced repository: what one test changes (params, remotes, commits,
    code) no other test sees, so the tests run in any order and on several workers."""
    return Path(shutil.copytree(built_repo, tmp_path / "repo", symlinks=True))


def test_repro_writes_every_output(pipeline_repo):
    repo = pipeline_repo
    for concept in ("digits", "letters", "omniglot", "cifar10", "noise"):
        assert (repo / "data" / "prepared" / f"{concept}.npz").is_file()
        assert (repo / "metrics" / "samples" / f"{concept}.png").is_file()
    train = json.loads((repo / "metrics" / "train.json").read_text())
    assert (train["concept"], train["kind"], train["source"]) == ("digits", "synthetic", "synthetic_digits")
    assert train["test_size"] == 200
    assert train["test_errors"] == round((1 - train["test_accuracy"]) * 200)
    assert train["test_accuracy"] > 0.2  # two epochs of a tiny CNN on 900 images (0.37 here); chance is 0.1
    curve = json.loads((repo / "metrics" / "train_curve.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2]
    digits, meta = read_concept_features(repo / "data" / "features", "digits")[:2]
    assert len(digits) == 200 and (meta["kind"], meta["known"]) == ("synthetic", True)
    assert meta["provenance"]["generator"].startswith("gradmeta.synthetic/")
    assert meta["model_sha256"] == hashlib.sha256((repo / "models" / "cnn.pt").read_bytes()).hexdigest()
    assert int((~digits["correct"]).sum()) == train["test_errors"]
    assert {"detector/mahalanobis", "detector/odin", "detector/mc_entropy", "grad_kl_uniform/all/l2",
            "grad_bce_ones/fc2.weight/l2"} <= set(digits.columns)
    assert {"detector/mahalanobis_pp", "detector/grad_knn", "detector/sirc", "detector/doctor_alpha", "prob/9",
            "factor/fc2/input_l2"} <= set(digits.columns)
    rejection = pd.read_csv(repo / "metrics" / "rejection.csv")
    assert {"known_only", "unseen", "seen"} <= set(rejection.group) and "pooled" in set(rejection.test_set)
    assert "## Rejection: both failures at once" in (repo / "metrics" / "report.md").read_text()
    assert json.loads((repo / "metrics" / "scenarios.json").read_text())["rejection"]["pooled"]["best_baseline"]
    assert (repo / "metrics" / "plots" / "risk_coverage_sirc.json").is_file()
    assert (repo / "models" / "detectors.npz").is_file() and meta["detectors"]["use"][0] == "mahalanobis"
    for concept in ("letters", "omniglot", "cifar10", "noise"):
        frame, _ = read_concept_features(repo / "data" / "features", concept)[:2]
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
    assert "- `digits` (known): SYNTHETIC stand-in — digits rendered from fonts, standing in for EMNIST digits" in report
    assert "- `noise`: generated — uniform noise; uniform U[0,1] per pixel, seed 0" in report
    assert "**Data:** SYNTHETIC stand-in: `digits`, `letters`, `omniglot`, `cifar10`; generated: `noise`." in report
    verdicts = re.findall(r"\*\*\((a|b|c|d)\) (holds|does not hold)\.\*\*", report)
    assert len(verdicts) == 4
    assert {c: int(word == "holds") for c, word in verdicts} == scenarios["claims"]
    assert (repo / "metrics" / "figures" / "roc_misclassification.png").is_file()
    assert "## Gradient metrics vs the field" in report and "| `detector/knn` | threshold |" in report
    assert "| `detectors+gradient` | logistic |" in report and "FPR@95 (OOD positive)" in report
    header = (repo / "metrics" / "measures.csv").read_text().splitlines()[0]
    assert header.startswith("scenario,test_set,group,input,classifier,accuracy_mean")
    assert header.endswith("fpr_at_95tpr_wrong_positive_mean,fpr_at_95tpr_wrong_positive_std")


def test_exp_runs_rerun_only_meta_and_evaluate_and_two_queue_workers_give_the_same_metrics(pipeline_repo):
    """`dvc exp run -S meta...` reruns meta and evaluate only; the same two experiments queued and
    run by two workers at once (`--run-all -j 2`, each in its own temporary copy) give the metrics
    of running them one after the other in the workspace."""
    repo = pipeline_repo
    params = (repo / "params.yaml").read_text()
    variants = {"xgb": ["-S", "meta.classifiers=[xgboost]"], "seed1": ["-S", "meta.seed=1"]}
    one_by_one = {}
    for name, args in variants.items():
        (repo / "params.yaml").write_text(params)
        out = dvc(repo, "exp", "run", "-n", f"one-{name}", *args).stdout
        assert re.findall(r"Running stage '([^']+)'", out) == ["meta", "evaluate"]
        one_by_one[name] = json.loads((repo / "metrics" / "headline.json").read_text())
        if name == "xgb":
            scenarios = json.loads((repo / "metrics" / "scenarios.json").read_text())
            assert set(scenarios["misclassification"]["digits"]["gradient"]) == {"xgboost"}
            diff = dvc(repo, "metrics", "diff").stdout
            assert "mis_meta" in diff  # the headline: dvc's own metrics file
            detail = dvc(repo, "metrics", "diff", "--targets", "metrics/scenarios.json").stdout
            assert "misclassification.digits.gradient.logistic.auroc" in detail  # the detail, on request
    (repo / "params.yaml").write_text(params)
    for name, args in variants.items():
        dvc(repo, "exp", "run", "--queue", "-n", f"two-{name}", *args)
    out = dvc(repo, "exp", "run", "--run-all", "-j", "2")
    assert re.search(r"Failed", out.stdout + out.stderr) is None, out.stdout + out.stderr
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    queued = {exp["name"]: exp["revs"][0]["data"]["metrics"]["metrics/headline.json"]["data"]
              for entry in shown for exp in (entry.get("experiments") or [])}
    for name in variants:
        assert queued[f"two-{name}"] == one_by_one[name]
    assert one_by_one["xgb"] != one_by_one["seed1"]  # the variants differ: the comparison can fail
    assert_readme_views_fit(repo)


def readme_exp_show_views() -> list[list[str]]:
    """Every `dvc exp show` command of the README's code blocks, as arguments (comments stripped)."""
    views, in_code = [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("dvc exp show"):
            views.append(shlex.split(line, comments=True)[3:])
    return views


def assert_readme_views_fit(repo: Path) -> None:
    """The README's `dvc exp show` views, run by DVC in a 120-column terminal on the baseline and four
    experiments, show every value whole: no line wider than 120 and no column folded into '…'."""
    views = readme_exp_show_views()
    assert len(views) >= 3, views
    for args in views:
        out = dvc(repo, "exp", "show", "--no-pager", *args, env={"COLUMNS": "120"}).stdout
        lines = out.splitlines()
        assert len(lines) >= 7, (args, out)  # header, workspace, baseline and the four experiments
        assert "…" not in out and max(map(len, lines)) <= 120, (args, out)
        assert re.search(r"\b0\.\d{4}\b", out), (args, out)  # numbers shown, not only names


def test_second_repro_is_a_no_op_and_forced_repro_is_byte_identical(pipeline_repo):
    repo = pipeline_repo
    before = outputs_digest(repo)
    again = dvc(repo, "repro")
    assert "Running stage" not in again.stdout
    dvc(repo, "repro", "-f")
    assert outputs_digest(repo) == before


def test_a_change_to_the_meta_code_makes_meta_and_evaluate_stale(pipeline_repo):
    """The scoring code of the fitted classifiers is a dep of evaluate too (a pickle holds no code)."""
    repo = pipeline_repo
    estimators = repo / "src" / "gradmeta" / "meta" / "classifiers" / "thresholded.py"
    original = estimators.read_text()
    estimators.write_text(original.replace("return self.sign_ * self._metric(X)", "return -self.sign_ * self._metric(X)"))
    assert estimators.read_text() != original
    stale = json.loads(dvc(repo, "status", "--json").stdout)
    assert {"meta", "evaluate"} <= set(stale)
    assert not any(s.startswith(("download", "train", "detectors", "extract")) for s in stale)
    estimators.write_text(original)
    assert json.loads(dvc(repo, "status", "--json").stdout) == {}


def test_a_second_clone_pulls_from_a_shared_remote_and_recomputes_nothing(pipeline_repo, tmp_path):
    """Machine A pushes outputs and run-cache to a remote (a local folder standing in for S3/GCS/SSH);
    machine B, a fresh clone, pulls them and `dvc repro` has nothing to do, byte-identical outputs."""
    repo = pipeline_repo
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "--force", "-d", "shared", str(remote))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "shared remote", "--allow-empty")
    dvc(repo, "push", "--run-cache")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    dvc(clone, "pull", "--run-cache")
    out = dvc(clone, "repro").stdout
    assert "Running stage" not in out
    assert outputs_digest(clone) == outputs_digest(repo)
    # an unreachable remote fails with DVC's own message; nothing is recomputed behind the user's back
    broken = tmp_path / "clone2"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(broken))
    dvc(broken, "remote", "modify", "shared", "url", str(tmp_path / "no-such-remote"))
    proc = subprocess.run([sys.executable, "-m", "dvc", "pull"], cwd=broken, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"}, timeout=300, check=False)
    assert proc.returncode != 0 and not (broken / "models" / "cnn.pt").exists()


def test_a_clone_of_the_upstream_commit_restores_every_stage_from_the_run_cache_alone(pipeline_repo, tmp_path):
    """The README's recipe: machine A ran the pipeline and shared it (`gradmeta share`: the run-cache and every
    object it points to) but committed nothing; machine B clones the upstream commit, which has no dvc.lock,
    and `dvc repro --pull` restores every stage but evaluate (its report and measures.csv are plain `cache: false`
    outs, which DVC's run-cache does not take), download and train with their uncached plots included; B's
    outputs and dvc.lock are A's, byte for byte."""
    repo = pipeline_repo
    remote = tmp_path / "remote"
    remote.mkdir()  # gradmeta share refuses a local remote folder that does not exist (a mistyped path)
    dvc(repo, "remote", "add", "--force", "--local", "-d", "upstream-share", str(remote))
    shared = sh(repo, "gradmeta", "share")
    assert re.match(r"pushed \d+ run-cache entries, \d+ workspace objects and \d+ objects the entries point to",
                    shared.stdout), shared.stdout
    clone = tmp_path / "b"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "git", "checkout", "-q", sh(repo, "git", "rev-list", "--max-parents=0", "HEAD").stdout.strip())
    assert not (clone / "dvc.lock").exists()
    dvc(clone, "remote", "add", "--local", "-d", "upstream-share", str(remote))
    out = dvc(clone, "repro", "--pull").stdout
    assert re.findall(r"Running stage '([^']+)'", out) == ["evaluate"], out
    stages = set(dvc(clone, "stage", "list", "--name-only").stdout.split())
    assert set(re.findall(r"Stage '([^']+)' is cached - skipping run", out)) == stages - {"evaluate"}
    assert outputs_digest(clone) == outputs_digest(repo)
    assert (clone / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()


def test_two_machines_extract_one_shard_each_and_meet_through_the_remote(pipeline_repo, tmp_path):
    """extract.shards = [0, 1]: machine A runs extract@digits-0, machine B extract@digits-1, each pushes
    its run-cache; A's `dvc repro --pull` checks B's shard out of the remote's run-cache, not
    computing it; the two parts are the unsharded table of the same model, value for value and in order."""
    repo = pipeline_repo
    whole = read_concept_features(repo / "data" / "features", "digits")[0]
    params = (repo / "params.yaml").read_text()
    dvc(repo, "remote", "add", "--force", "-d", "shared", str(tmp_path / "remote"))
    dvc(repo, "push")
    (repo / "params.yaml").write_text(params.replace("  shards: [0]\n", "  shards: [0, 1]\n"))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "two shards")
    machines = {}
    for k in (0, 1):
        machines[k] = clone = tmp_path / f"machine{k}"
        sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
        # --pull: the upstream outputs come from the remote (not recomputed), then the shard runs
        out = dvc(clone, "repro", "--pull", f"extract@digits-{k}").stdout
        assert re.findall(r"Running stage '([^']+)'", out) == [f"extract@digits-{k}"]
        dvc(clone, "push", "--run-cache")
    a = machines[0]
    out = dvc(a, "repro", "--pull", "extract@digits-1").stdout  # the remote's run-cache knows this run
    assert "Running stage" not in out and "Stage 'extract@digits-1' is cached - skipping run" in out
    union, meta, _ = read_concept_features(a / "data" / "features", "digits")
    assert meta["shards"] == 2 and [len(p) for p in (pd.read_parquet(a / "data" / "features" / "digits" / f)
                                                     for f in ("part-0.parquet", "part-1.parquet"))] == [128, 72]
    assert union.equals(whole)
    for column in whole.columns[5:]:
        assert union[column].to_numpy().tobytes() == whole[column].to_numpy().tobytes(), column


def test_user_concepts_from_params_alone_join_every_scenario(pipeline_repo):
    """A seventh concept from an npz and an eighth from a folder of drawings, through params.yaml only."""
    repo = pipeline_repo
    rng = np.random.default_rng(7)
    np.savez(repo / "mine.npz", images=rng.integers(0, 256, (30, 28, 28)).astype(np.uint8))
    for i in range(12):  # black-on-white drawings of several sizes, in two class folders
        img = np.full((40 + 4 * i, 40), 255, np.uint8)
        img[5:20, 5 + i: 10 + i] = 0
        (repo / "drawings" / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(repo / "drawings" / f"class{i % 2}" / f"{i:02d}.png")
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("  user_concepts: {}\n", (
        "  user_concepts:\n"
        "    mine: {format: npz, path: mine.npz, test: 20}\n"
        "    drawings: {format: folder, path: drawings, invert: true}\n")))
    out = dvc(repo, "repro").stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {"import@mine", "import@drawings", "extract_user@mine-0", "extract_user@drawings-0", "meta", "evaluate"}
    scenarios = json.loads((repo / "metrics" / "scenarios.json").read_text())
    assert {"mine", "drawings"} <= set(scenarios["unknown"])
    assert len(read_concept_features(repo / "data" / "features", "mine")[0]) == 20
    assert len(read_concept_features(repo / "data" / "features", "drawings")[0]) == 12
    report = (repo / "metrics" / "report.md").read_text()
    assert "- `mine`: user data — your own data (npz at mine.npz)" in report
    assert "- `drawings`: user data — your own data (folder at drawings)" in report
    assert "| `softmax/entropy` | threshold |" in report and "mine AUROC" in report and "drawings AUROC" in report
    # editing one user file makes exactly its own import stale (extract_user@mine, meta and evaluate follow
    # from its output, as for every concept; test_stage_deps checks those deps)
    np.savez(repo / "mine.npz", images=rng.integers(0, 256, (30, 28, 28)).astype(np.uint8))
    stale = json.loads(dvc(repo, "status", "--json").stdout)
    assert set(stale) == {"import@mine"}


def test_evaluate_into_a_users_folder_removes_only_its_own_stale_files(pipeline_repo, tmp_path):
    """``--metrics-dir`` may be a folder of the user's: the stage replaces its own files there (a stale
    chart of a former run included) and leaves every other file as it was, out of the report too."""
    out = tmp_path / "mine"
    theirs = {out / "figures" / "notes.png": b"a user's picture", out / "plots" / "mine.json": b"{}",
              out / "histograms" / "keep.txt": b"keep"}
    stale = out / "figures" / "roc_gone.png"
    for path, data in {**theirs, stale: b"stale"}.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    proc = subprocess.run([sys.executable, "stages/evaluate.py", "--params", "params.yaml", "--features-dir",
                           "data/features", "--meta", "models/meta/meta.npz", "--metrics-dir", str(out)],
                          cwd=pipeline_repo, capture_output=True, text=True, check=False,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert all(path.read_bytes() == data for path, data in theirs.items())
    assert not stale.exists()
    report = (out / "report.md").read_text()
    assert "notes.png" not in report and "figures/risk_coverage.png" in report

