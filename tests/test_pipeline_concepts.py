"""End to end with other concepts: Fashion-MNIST as the known concept and EMNIST digits as an unknown,
fixture archives in their real formats served from 127.0.0.1; then a queued experiment that finds
its archives in the per-user cache (a temporary copy of the workspace holds only git-tracked files)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from archives import make_emnist_zip, make_idx_dataset
from dvc_repo import FIXTURE_SITE, dvc, new_repo, sh
from http_server import serve
from stage_runner import TINY

from gradmeta.datasets.download import ARCHIVES

pytestmark = pytest.mark.slow


def fixture_files(src: Path) -> dict[str, Path]:
    """Fixture archives in the real formats, by ARCHIVES key, laid out as in the cache (relpath)."""
    make_idx_dataset(src / "fashion_mnist", {"train": 700, "test": 120}, seed=3)
    make_emnist_zip(src / "gzip.zip", {("digits", "train"): 5, ("digits", "test"): 80, ("letters", "test"): 5})
    keys = ["emnist"] + [f"fashion_mnist_{s}_{p}" for s in ("train", "test") for p in ("images", "labels")]
    return {k: src / ARCHIVES[k].relpath for k in keys}


def params_text(mirror: str) -> str:
    params = {group: dict(values) for group, values in TINY.items()}
    params["data"].update(source="real", known="fashion", concepts={
        "fashion": {"source": "fashion_mnist", "train": 600, "test": 100},
        "digits": {"source": "emnist_digits", "test": 60},
        "noise": {"source": "uniform_noise", "test": 60}},
        real={"raw_dir": None, "mirror": mirror, "retries": 0, "timeout": 5})
    params["evaluate"]["remote_concepts"] = ["noise"]
    return yaml.safe_dump(params, sort_keys=False)


@pytest.fixture(scope="module")
def fashion_repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("fashion")
    files = fixture_files(base / "src")
    env = {"PYTHONPATH": str(FIXTURE_SITE), "XDG_CACHE_HOME": str(base / "cache-served"),
           "GRADMETA_TEST_ARCHIVE_MD5": json.dumps({k: hashlib.md5(p.read_bytes()).hexdigest() for k, p in files.items()})}
    with serve() as srv:
        for key, path in files.items():
            srv.files[ARCHIVES[key].relpath] = path.read_bytes()
        repo = new_repo(base / "repo", params_text(srv.base))
        out = dvc(repo, "repro", env=env).stdout
        served = [p for p, _ in srv.requests]
    return repo, base, files, env, out, served


def test_fashion_known_and_digits_unknown_from_served_archives(fashion_repo):
    repo, base, _, _, out, served = fashion_repo
    assert sorted(served) == sorted(["/gzip.zip"] + [f"/fashion_mnist/{n}" for n in (
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz")])
    assert (base / "cache-served" / "gradmeta" / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert not (repo / "data" / "raw").exists()  # the archive cache is outside the workspace
    train = json.loads((repo / "metrics" / "train.json").read_text())
    assert (train["concept"], train["source"], train["kind"]) == ("fashion", "fashion_mnist", "archive")
    assert train["test_accuracy"] > 0.5  # the fixture's bar-per-class images are learnable
    scenarios = json.loads((repo / "metrics" / "scenarios.json").read_text())
    assert set(scenarios["misclassification"]) == {"fashion"} and set(scenarios["cnn"]) == {"fashion"}
    assert set(scenarios["unknown"]) == {"digits", "noise", "pooled"}
    report = (repo / "metrics" / "report.md").read_text()
    assert "**Data:** real archive: `fashion`, `digits`; generated: `noise`." in report
    assert "SYNTHETIC" not in report
    assert "- `fashion` (known): real archive — Fashion-MNIST; `train-images-idx3-ubyte.gz` (md5 " in report
    assert "- `digits`: real archive — EMNIST digits; `gzip.zip` (md5 " in report
    assert "Fashion-only meta classifiers" in report and "remote from fashion (noise)" in report


def test_a_queued_experiment_reuses_a_hand_placed_archive(fashion_repo):
    repo, base, files, env, _, _ = fashion_repo
    cache = base / "cache-by-hand" / "gradmeta"
    for key, path in files.items():  # placed by hand: no network is ever asked
        (cache / ARCHIVES[key].relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, cache / ARCHIVES[key].relpath)
    env = {**env, "XDG_CACHE_HOME": str(base / "cache-by-hand")}
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline")
    # only the stage that reads the archive: the queued copy must find it in the per-user cache, since
    # the mirror is dead and the workspace copy holds no archive
    dvc(repo, "exp", "run", "--queue", "download@digits", "-S", "data.concepts.digits.test=40",
        "-S", "data.real.mirror=http://127.0.0.1:9", env=env)
    out = dvc(repo, "exp", "run", "--run-all", env=env)
    shown = json.loads(dvc(repo, "exp", "show", "--json", env=env).stdout)
    baseline = next(entry for entry in shown if entry["rev"] == "workspace")["data"]["outs"]["data/prepared/digits.npz"]
    runs = [rev["data"] for entry in shown for exp in (entry.get("experiments") or []) for rev in exp["revs"]]
    assert len(runs) == 1, out.stdout + out.stderr
    assert runs[0]["params"]["params.yaml"]["data"]["data"]["concepts"]["digits"] == {"source": "emnist_digits", "test": 40}
    digits = runs[0]["outs"]["data/prepared/digits.npz"]
    assert digits["hash"] != baseline["hash"] and digits["size"] < baseline["size"]  # 40 images now, not 60
    assert re.search(r"Failed", out.stdout + out.stderr) is None
