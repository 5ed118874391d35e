"""`gradmeta seeds`: experiments that differ only in train.seed, queued as the README says and run by DVC,
gathered into mean ± std over the seeds of every headline metric (checked against NumPy on the values the toy
stage wrote); a variant of other params is a group of its own; too few seeds is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dvc_repo import dvc, sh

from gradmeta.core.errors import GradmetaError
from gradmeta.seeds import seeds_report

STAGE = """import json, os, yaml
p = yaml.safe_load(open("params.yaml"))
s, w = p["train"]["seed"], p["meta"]["width"]
os.makedirs("metrics", exist_ok=True)
json.dump({"cnn_error": 0.04 + 0.003 * s * s, "mis_meta": 0.9 + 0.01 * s + w / 100, "mis_meta_std": 0.002 * (s + 1)},
          open("metrics/headline.json", "w"))
"""
DVC_YAML = """stages:
  toy:
    cmd: python toy.py
    deps: [toy.py]
    params: [train, meta]
    metrics:
      - metrics/headline.json: {cache: false}
"""


def toy_headline(seed: int, width: int) -> dict[str, float]:
    return {"cnn_error": 0.04 + 0.003 * seed * seed, "mis_meta": 0.9 + 0.01 * seed + width / 100,
            "mis_meta_std": 0.002 * (seed + 1)}


@pytest.fixture(scope="module")
def seeded_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("seeds")
    (repo / "toy.py").write_text(STAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("train:\n  seed: 0\nmeta:\n  width: 1\n")
    sh(repo, "git", "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "repro", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "seed 0")
    for args in (["-S", "train.seed=1"], ["-S", "train.seed=2"], ["-S", "meta.width=3"],  # the README's recipe
                 ["-S", "meta.width=3", "-S", "train.seed=1"]):
        dvc(repo, "exp", "run", "--queue", *args)
    dvc(repo, "exp", "run", "--run-all")
    return repo


def test_seeds_gives_mean_and_std_over_the_seeds_of_every_headline_metric(seeded_repo):
    out = sh(seeded_repo, "gradmeta", "seeds").stdout
    blocks = out.split("runs that differ only in train.seed")
    assert len(blocks) == 3, out  # the baseline's params (seeds 0, 1, 2) and meta.width=3 (seeds 0, 1)
    assert "(the baseline's params)" in blocks[1] and "(meta.width=3)" in blocks[2]
    for block, width, seeds in ((blocks[1], 1, [0, 1, 2]), (blocks[2], 3, [0, 1])):
        rows = {line.split(" | ")[0].lstrip("| "): line for line in block.splitlines() if line.startswith("| ")}
        assert {"cnn_error", "mis_meta"} <= set(rows) and "mis_meta_std" not in rows  # a std is a column, not a row
        for key in ("cnn_error", "mis_meta"):
            values = np.array([toy_headline(s, width)[key] for s in seeds])
            cells = rows[key].strip("| ").split(" | ")
            assert cells[1] == f"{values.mean():.4f} ± {values.std(ddof=1):.4f}", (key, cells)
            assert cells[3] == ", ".join(f"{v:.4f}" for v in values)
        split = np.mean([toy_headline(s, width)["mis_meta_std"] for s in seeds])
        assert rows["mis_meta"].strip("| ").split(" | ")[2] == f"{split:.4f}"
        assert rows["cnn_error"].strip("| ").split(" | ")[2] == "–"


def test_seeds_reads_a_saved_json_and_says_when_there_is_no_group(seeded_repo, tmp_path):
    shown = json.loads(dvc(seeded_repo, "exp", "show", "--json").stdout)
    saved = tmp_path / "shown.json"
    saved.write_text(json.dumps(shown))
    from_file = subprocess.run([str(Path(sys.executable).parent / "gradmeta"), "seeds", "--from-json", str(saved)],
                               capture_output=True, text=True, check=True).stdout
    assert from_file == "\n".join(seeds_report(shown)) + "\n"
    with pytest.raises(GradmetaError, match="no two experiments differ only in train.seed"):
        seeds_report(shown, metrics_file="metrics/other.json")
    lonely = [dict(shown[0], experiments=None)]
    with pytest.raises(GradmetaError, match="queue some with `dvc exp run --queue -S train.seed=1`"):
        seeds_report(lonely)
