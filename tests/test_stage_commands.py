"""No value of params.yaml reaches a shell: a concept name cannot run a command through dvc.yaml."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from dvc_repo import new_repo
from stage_runner import ROOT, TINY

HOSTILE = ("x;touch PWNED;true", "y$(touch PWNED2)", "z';touch PWNED3;'", 'w";touch PWNED4;"')


def test_no_stage_command_interpolates_a_value():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands = {name: stage.get("do", stage)["cmd"] for name, stage in stages.items()}
    assert {name: cmd for name, cmd in commands.items() if "${" in cmd} == {}


@pytest.mark.slow
def test_a_concept_name_with_shell_syntax_runs_nothing_and_fails_on_the_name(tmp_path):
    params = {k: dict(v) for k, v in TINY.items()}
    params["data"]["concepts"] = {"digits": params["data"]["concepts"]["digits"],
                                  **{name: {"source": "uniform_noise", "test": 10} for name in HOSTILE}}
    repo = new_repo(tmp_path / "repo", yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    for name in HOSTILE:
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "-s", f"download@{name}"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode != 0
        # params.yaml is refused on its first bad name, before any work (one line)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [f"error: params.yaml: data.concepts.{HOSTILE[0]}: concept name {HOSTILE[0]!r} must be a "
                          "lower-case letter, then up to 39 lower-case letters, digits or '_' (it names DVC stages "
                          "and files)"], proc.stderr
    assert sorted(p.name for p in repo.rglob("PWNED*")) == []
    assert not (repo / "data").exists()
