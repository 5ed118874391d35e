"""Write openood/dvc.yaml from the project's dvc.yaml: the same stages, run in this folder (so its own
params.yaml, data/, models/, metrics/ and user_data/), with the code one folder up.

Run after editing dvc.yaml: ``python openood/make_dvc_yaml.py`` (tests/test_openood_project.py checks
that the two agree).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = """\
# OpenOOD v1.5's CIFAR-10 benchmark as a DVC project of its own: `dvc repro openood/dvc.yaml` from the
# repository (or `dvc repro` in this folder). Its parameters are openood/params.yaml; its data, models
# and metrics stay in this folder. GENERATED from ../dvc.yaml by openood/make_dvc_yaml.py: edit that
# file and run the script (tests/test_openood_project.py checks the two agree).
"""


def derive(main: str) -> str:
    """openood/dvc.yaml's text from the project's dvc.yaml text: the stage scripts and the code become
    ``../stages/...`` and ``../src/...``; every other path (params.yaml, data, models, metrics, user_data)
    is this folder's own."""
    body = main[main.index("stages:"):]
    body = body.replace("python stages/", "python ../stages/")
    body = re.sub(r"^(\s+- )(stages/|src/)", r"\1../\2", body, flags=re.MULTILINE)
    return HEADER + body


def main() -> int:
    target = HERE / "dvc.yaml"
    target.write_text(derive((HERE.parent / "dvc.yaml").read_text()))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
