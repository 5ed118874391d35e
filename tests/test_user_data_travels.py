"""Own data in its tracked home (``user_data/`` + ``dvc add``) travels: a queued experiment, which runs
in a temporary copy holding only git-tracked files, still reads it."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from dvc_repo import dvc, new_repo, sh
from stage_runner import ROOT, TINY

pytestmark = pytest.mark.slow


def test_a_queued_experiment_reads_a_user_concept_tracked_in_user_data(tmp_path):
    params = {group: dict(values) for group, values in TINY.items()}
    params["data"]["user_concepts"] = {"mine": {"format": "npz", "path": "user_data/mine.npz", "test": 10}}
    repo = new_repo(tmp_path / "repo", yaml.safe_dump(params, sort_keys=False))
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")  # the project's own ignore rules
    (repo / "user_data").mkdir(exist_ok=True)  # new_repo made user_data/checkpoints
    rng = np.random.default_rng(0)
    np.savez(repo / "user_data" / "mine.npz", images=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
             labels=rng.integers(0, 3, 30))
    dvc(repo, "add", "user_data/mine.npz")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "my concept, tracked")
    tracked = sh(repo, "git", "ls-files", "user_data").stdout.split()
    assert sorted(tracked) == ["user_data/.gitignore", "user_data/checkpoints/README.md",
                               "user_data/image_lists/README.md", "user_data/mine.npz.dvc"]  # git holds no data

    dvc(repo, "exp", "run", "--queue", "import@mine", "-S", "data.user_concepts.mine.test=12")
    out = dvc(repo, "exp", "run", "--run-all")
    assert re.search(r"Failed|Errno", out.stdout + out.stderr) is None, out.stdout + out.stderr
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    runs = [rev["data"] for entry in shown for exp in (entry.get("experiments") or []) for rev in exp["revs"]]
    assert len(runs) == 1, runs
    prepared = runs[0]["outs"]["data/prepared/mine.npz"]
    assert prepared["hash"] and prepared["size"] > 12 * 784  # 12 test images of the tracked file
