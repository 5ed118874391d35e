"""Throw-away git + DVC repositories of this project for the end-to-end tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from stage_runner import ROOT

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
FIXTURE_SITE = ROOT / "tests" / "fixture_site"  # see its sitecustomize.py


def sh(repo: Path, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``repo`` (this interpreter's environment first on PATH); fail the test on rc != 0."""
    full = {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    proc = subprocess.run(list(cmd), cwd=repo, env=full, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def dvc(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return sh(repo, sys.executable, "-m", "dvc", *args, env=env)


PROJECT = ("dvc.yaml", "stages", "src", "user_data/checkpoints", "user_data/image_lists")  # the last two: deps
OUTPUTS = shutil.ignore_patterns("__pycache__", "data", "models", "metrics", "dvc.lock")  # a project's, never copied


def new_repo(repo: Path, params_text: str, extra: tuple[str, ...] = (), files: dict[str, str] | None = None) -> Path:
    """The project's pipeline and code in a fresh git + DVC repository with ``params_text`` as
    params.yaml, committed; ``extra`` folders of the project (without their outputs) and ``files``
    (path: text) come too."""
    repo.mkdir(parents=True, exist_ok=True)
    for item in PROJECT + extra:
        src = ROOT / item
        (repo / item).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, repo / item, ignore=OUTPUTS if item in extra else None)
        else:
            shutil.copy(src, repo / item)
    (repo / "params.yaml").write_text(params_text)
    for name, text in (files or {}).items():
        (repo / name).write_text(text)
    (repo / ".gitignore").write_text("/data/\n/models/\n__pycache__/\n")
    sh(repo, "git", "init", "-q")
    dvc(repo, "init", "-q")
    shutil.copy(ROOT / ".dvcignore", repo / ".dvcignore")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "init")
    return repo


def outputs_digest(repo: Path) -> dict[str, str]:
    folders = ("data/prepared", "data/features", "models", "metrics")
    files = [p for d in folders for p in sorted((repo / d).rglob("*")) if p.is_file()]
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
