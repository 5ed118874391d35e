"""A stage's DVC deps are the code it runs: every gradmeta source file it runs is one of its deps, so no
code change goes unseen, and every file its deps name is one it runs, so no change to other code reruns it.

Two independent looks at what a stage runs: (1) its script's imports executed in a fresh
interpreter, every loaded ``gradmeta`` module's file collected; (2) the static closure of every
``import gradmeta...`` statement in the script and the files it reaches, function-level (lazy)
imports included. Both must be covered by the stage's ``deps`` in dvc.yaml (and in openood/dvc.yaml,
generated from it); every source file the deps name must be in (2).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from stage_runner import ROOT

SRC = ROOT / "src"

IMPORTS = """
import importlib.abc, importlib.util, json, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "xgboost") and name not in seen:
            seen[name] = os.environ.get("OMP_WAIT_POLICY")
        return None
sys.meta_path.insert(0, Watch())
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items())
                        if (n == "gradmeta" or n.startswith("gradmeta.")) and getattr(m, "__file__", None))))
import gradmeta.meta.classifiers, xgboost  # what the stages import when they fit or load models
print(json.dumps(seen))
"""


def stage_code_deps(project: str = ".") -> dict[str, tuple[Path, list[str]]]:
    """Stage name -> (its script, its deps that are not templated data paths, relative to the repository),
    of the DVC project in folder ``project``."""
    folder = (ROOT / project).resolve()
    stages = yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = next(part for part in body["cmd"].split() if part.endswith(".py") and "stages/" in part)
        deps = [str((folder / d).resolve().relative_to(ROOT)) for d in body["deps"] if "${" not in d]
        out[name] = ((folder / script).resolve(), deps)
    return out


@functools.cache
def stage_imports(script: Path) -> tuple[frozenset[Path], dict[str, str | None]]:
    """What importing ``script`` in a fresh interpreter (OMP_WAIT_POLICY unset) does: the gradmeta
    source files it loads, and the OMP_WAIT_POLICY seen when torch and xgboost first load (after
    importing what the stages import to fit or load models too). One interpreter serves both tests."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", IMPORTS, str(script)], capture_output=True, text=True,
                          timeout=300, check=True, cwd=ROOT, env=env)
    files, seen = proc.stdout.strip().splitlines()[-2:]
    return frozenset(Path(f).resolve() for f in json.loads(files)), json.loads(seen)


def loaded_files(script: Path) -> set[Path]:
    """gradmeta source files loaded by importing ``script`` in a fresh interpreter."""
    return set(stage_imports(script)[0])


def _module_file(dotted: str) -> Path | None:
    base = SRC.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _imported_modules(path: Path) -> set[str]:
    """Dotted gradmeta modules a file imports anywhere in it (also names that are submodules)."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1]) if SRC in path.parents else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative import
                module = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], module]).strip(".")
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return {m for m in found if m == "gradmeta" or m.startswith("gradmeta.")}


def static_closure(script: Path) -> set[Path]:
    """Every gradmeta file reachable from ``script`` through import statements, with the
    ``__init__.py`` of each package on the way (Python runs them first)."""
    todo, seen = [script.resolve()], set()
    while todo:
        path = todo.pop()
        for dotted in _imported_modules(path):
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):
                f = _module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return seen


def uncovered(files: set[Path], deps: list[str]) -> list[str]:
    """Files (relative to the repo) that no dep path covers (a dep is a file or a directory)."""
    roots = [(ROOT / d).resolve() for d in deps]
    return sorted(str(f.relative_to(ROOT)) for f in files
                  if not any(f == r or r in f.parents for r in roots))


def named_sources(deps: list[str]) -> set[Path]:
    """Every gradmeta source file the deps name: a file itself, a folder every ``.py`` file under it."""
    out = set()
    for d in deps:
        path = (ROOT / d).resolve()
        if SRC in path.parents or path == SRC:
            out |= {f.resolve() for f in path.rglob("*.py")} if path.is_dir() else {path}
    return out


def not_run(script: Path, deps: list[str]) -> list[str]:
    """Source files the deps name that the stage never runs: neither in its static closure nor loaded when its
    script is imported (a package that imports every file in it, as the rules and the meta classifiers do)."""
    runs = static_closure(script) | loaded_files(script)
    return sorted(str(f.relative_to(ROOT)) for f in named_sources(deps) - runs)


STAGES = stage_code_deps()
PROJECTS = {"main": STAGES, "openood": stage_code_deps("openood")}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_loaded_gradmeta_file_is_a_dep(stage):
    script, deps = STAGES[stage]
    assert str(script.relative_to(ROOT)) in deps, f"{stage}: its own script is not a dep"
    loaded = loaded_files(script)
    assert loaded, f"{stage}: loads no gradmeta file?"
    assert uncovered(loaded, deps) == [], f"{stage}: loads files that are not deps"
    assert uncovered(static_closure(script), deps) == [], f"{stage}: imports files that are not deps"


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_every_source_file_a_stage_names_is_one_it_runs(project):
    for stage, (script, deps) in PROJECTS[project].items():
        assert not_run(script, deps) == [], f"{project} {stage}: names files it does not run"
        if project == "openood":  # the generated project names the same code
            code = [d for d in deps if d.startswith(("src/", "stages/"))]
            assert code == [d for d in STAGES[stage][1] if d.startswith(("src/", "stages/"))], stage


def test_what_each_stage_does_not_run_reruns_nothing():
    """The cases that reran stages before: a layer rule's edit does not rerun ``detectors``, the train stage's
    work does not rerun ``detectors`` or ``extract``, the library's table does not rerun ``extract``, and how
    the detectors stage runs (``detectors_stage``) is not a param of ``extract``."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    rule = SRC / "gradmeta/uncertainty/gradients/rules/conv.py"
    assert rule not in named_sources(STAGES["detectors"][1]) and rule in named_sources(STAGES["extract"][1])
    train_work = SRC / "gradmeta/cnn/stage.py"
    assert all(train_work not in named_sources(STAGES[s][1]) for s in ("detectors", "extract", "extract_user"))
    assert SRC / "gradmeta/uncertainty/table.py" not in named_sources(STAGES["extract"][1])
    assert "detectors_stage" in spec["detectors"]["params"]
    assert all("detectors_stage" not in spec[s]["params"] for s in ("extract", "extract_user"))


def test_the_reverse_check_fails_when_a_dep_names_more():
    script, deps = STAGES["detectors"]
    assert not_run(script, deps) == []
    wider = [*deps, "src/gradmeta/uncertainty"]
    assert "src/gradmeta/uncertainty/gradients/rules/conv.py" in not_run(script, wider)


def test_the_check_fails_when_a_dep_is_dropped():
    script, deps = STAGES["evaluate"]
    loaded = loaded_files(script)
    for dropped in ("src/gradmeta/meta/inputs.py", "src/gradmeta/core", "src/gradmeta/features.py"):
        fewer = [d for d in deps if d != dropped]
        assert len(fewer) == len(deps) - 1
        missing = uncovered(loaded, fewer)
        assert missing and all(m.startswith(dropped) for m in missing)


def test_static_closure_sees_lazy_imports(tmp_path):
    script = tmp_path / "lazy.py"
    script.write_text("def main():\n    from gradmeta.evaluation.report import update_readme\n")
    files = {str(f.relative_to(ROOT)) for f in static_closure(script)}
    assert {"src/gradmeta/__init__.py", "src/gradmeta/evaluation/__init__.py",
            "src/gradmeta/evaluation/report.py"} <= files
    assert "src/gradmeta/meta/classifiers/__init__.py" in files  # report -> ... -> meta, through the package __init__


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_openmp_threads_wait_passively_from_the_first_import(stage):
    """The OpenMP runtime reads its wait policy when torch or xgboost loads: by then it must be set."""
    seen = stage_imports(STAGES[stage][0])[1]
    assert seen and set(seen.values()) == {"PASSIVE"}, seen


def test_every_plot_is_declared_once():
    """A file that is both a stage's plot output and in the top-level plots is drawn twice by
    ``dvc plots show``; each plot file appears in one of the two places only."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stage_plots = {next(iter(p)) if isinstance(p, dict) else p
                   for stage in spec["stages"].values() for p in stage.get("do", stage).get("plots", [])}
    top = set()
    for entry in spec.get("plots", []):
        name, body = (next(iter(entry.items())) if isinstance(entry, dict) else (entry, None))
        ys = (body or {}).get("y")
        top |= set(ys) if isinstance(ys, dict) else {name}
    assert top, "the top-level plots draw nothing"
    twice = {p for p in stage_plots if any(p == t or t.startswith(p.rstrip("/") + "/") or p.startswith(t + "/")
                                               for t in top)}
    assert twice == set()
    assert "/dvc_plots/" in (ROOT / ".gitignore").read_text().splitlines()
