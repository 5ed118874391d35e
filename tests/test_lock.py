"""The committed dvc.lock describes this pipeline and nothing else, and matches its code and params."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from stage_runner import ROOT


def _dvc(cwd: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"}, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _fresh_copy(dest: Path) -> Path:
    """The files a fresh clone of the working tree would hold (tracked, and untracked but not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def test_every_lock_entry_is_a_stage_of_dvc_yaml_and_every_stage_has_one():
    lock = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    stages = set(_dvc(ROOT, "stage", "list", "--name-only").split())
    assert lock - stages == set(), "dvc.lock holds stages dvc.yaml no longer defines"
    assert stages - lock == set(), "stages of dvc.yaml that dvc.lock has never recorded"


def test_a_fresh_clone_lacks_only_the_outputs_its_lock_records(tmp_path):
    """`dvc status` of a fresh copy: every stage's code, params and command match the lock; what differs is
    only outputs that are not there yet (and deps that are such outputs). A stale lock fails here."""
    repo = _fresh_copy(tmp_path / "clone")
    status = json.loads(_dvc(repo, "status", "--json"))
    outputs = {f"{lock.parent.relative_to(repo).as_posix()}/{path}".removeprefix("./")  # every project's lock
               for lock in (repo / "dvc.lock", repo / "openood/dvc.lock")
               for stage in yaml.safe_load(lock.read_text())["stages"].values()
               for path in (o["path"] for o in stage.get("outs", []))}
    problems = []
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):
                problems.append(f"{stage}: {change}")
                continue
            for kind, paths in change.items():
                for path, state in (paths.items() if isinstance(paths, dict) else [(str(paths), "?")]):
                    made = any(out == path or out.startswith(path.rstrip("/") + "/") for out in outputs)
                    if state not in ("deleted", "not in cache") or (kind == "changed deps" and not made):
                        problems.append(f"{stage}: {kind} {path} {state}")
    assert problems == []
