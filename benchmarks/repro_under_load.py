"""The default pipeline's wall time on a quiet machine and with competing CPU-bound processes.

Runs ``dvc repro -f`` twice in a throw-away copy of the repository (git-tracked files only, as a
fresh clone has them): once quiet, once while ``--competitors`` busy-loop processes (pure Python,
one core each) run beside it; prints both times, their ratio and each stage's time. Both runs are
in this one process, so the ratio compares like with like.

    python benchmarks/repro_under_load.py [--competitors 1] [--params params.yaml]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from process_memory import PeakMemory

ROOT = Path(__file__).resolve().parents[1]
BUSY = "import time\nend = time.time() + 7200\nwhile time.time() < end:\n    pass\n"


def copy_repo(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)


def timed_repro(repo: Path, force: bool = True, echo: bool = False, memory: dict[str, float] | None = None,
                targets: tuple[str, ...] = (), env: dict[str, str] | None = None,
                lines: list[str] | None = None) -> tuple[float, dict[str, float]]:
    """Wall seconds of ``dvc repro [-f]`` and the seconds between consecutive stage starts (the
    stage's command plus DVC's hashing of its outputs); ``echo`` passes the stage log through;
    ``memory``, when given, receives each stage's peak resident memory in GB (the largest process,
    sampled: :mod:`process_memory`); ``targets`` are passed to ``dvc repro`` (a dvc.yaml or stage), ``env``
    adds to the environment; ``lines``, when given, receives every line DVC and the stages printed."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    start = time.perf_counter()
    command = [sys.executable, "-m", "dvc", "repro", *(["-f"] if force else []), *targets]
    proc = subprocess.Popen(command, cwd=repo, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stages, last, name = {}, start, None
    with PeakMemory(proc.pid, enabled=memory is not None) as sampler:
        for line in proc.stdout:
            if echo:
                print(f"[{time.perf_counter() - start:7.1f} s] {line}", end="", flush=True)
            if lines is not None:
                lines.append(line.rstrip("\n"))
            hit = re.match(r"Running stage '([^']+)'", line)
            if hit:
                now = time.perf_counter()
                if name is not None:
                    stages[name] = now - last
                name, last = hit.group(1), now
                sampler.phase = name
        code = proc.wait()
    if memory is not None:
        memory.update({k: round(v, 2) for k, v in sampler.peaks.items()})
    if code != 0:
        raise SystemExit(f"dvc repro failed in {repo}")
    total = time.perf_counter() - start
    if name is not None:
        stages[name] = start + total - last
    return total, stages


@click.command()
@click.option("--competitors", default=1, show_default=True, help="Busy-loop processes during the loaded run.")
def main(competitors: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        copy_repo(repo)
        quiet, quiet_stages = timed_repro(repo)
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(competitors)]
        try:
            loaded, loaded_stages = timed_repro(repo)
        finally:
            for p in busy:
                p.kill()
    print(f"dvc repro -f: quiet {quiet:.0f} s, with {competitors} busy process(es) {loaded:.0f} s: "
          f"{loaded / quiet:.2f}x (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} in this shell)")
    print(f"{'stage':<22}{'quiet s':>9}{'loaded s':>10}{'ratio':>7}")
    for stage, seconds in quiet_stages.items():
        other = loaded_stages.get(stage, float("nan"))
        print(f"{stage:<22}{seconds:>9.1f}{other:>10.1f}{other / seconds:>7.2f}")


if __name__ == "__main__":
    main()
