"""The README's results block is generated from the committed report, and its two commands are stated."""

import re
import subprocess
from pathlib import Path

from gradmeta.evaluation.report import RESULTS_END, RESULTS_START, readme_section

ROOT = Path(__file__).resolve().parents[1]


def reports() -> list[str]:
    """The report as committed (HEAD, where this is a git checkout) and as it is in the working tree.

    ``dvc repro`` on another CPU may rewrite the working report with numbers that differ in the last
    digits (its float rounding); what must hold on every machine is that the committed README was
    made from the committed report.
    """
    texts = [(ROOT / "metrics" / "report.md").read_text()]
    head = subprocess.run(["git", "show", "HEAD:metrics/report.md"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if head.returncode == 0:
        texts.append(head.stdout)
    return texts


def test_results_block_is_made_from_the_committed_report():
    readme = (ROOT / "README.md").read_text()
    block = re.search(re.escape(RESULTS_START) + r".*?" + re.escape(RESULTS_END), readme, re.DOTALL)
    assert block is not None
    assert block.group(0) in [readme_section(text) for text in reports()]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = ci.strip().splitlines()[-1]
    assert test_command in readme


def test_the_own_data_example_lives_in_a_tracked_home():
    """The README's user_concepts paths must not be git-ignored, or `dvc add` refuses them and
    queued experiments, --temp runs and clones never see the data."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Your own data as a concept"): readme.index("#### Running on real data")]
    paths = re.findall(r"path: ([\w./-]+)[,}]", section)
    assert paths and all(p.startswith("user_data/") for p in paths), paths
    assert "dvc add user_data/" in section
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 1, f"git-ignored: {ignored.stdout}"  # 1: none of them is ignored
    assert (ROOT / "user_data" / "README.md").is_file()


def test_the_readme_commands_install_the_cpu_build_of_torch():
    """Both commands name PyTorch's CPU index and the lock pins the CPU build's local version, so pip can
    never resolve the default Linux wheel with its CUDA libraries."""
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2
    for command in commands:
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in command and "-c requirements.lock" in command
    pins = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line.startswith("torch==")]
    assert pins == ["torch==2.13.0+cpu"]


def test_the_slow_tier_says_which_test_runs():
    from conftest import announced

    assert announced("slow", "tests/test_pipeline.py::test_x") == "running tests/test_pipeline.py::test_x"
    assert announced("not slow", "tests/test_pipeline.py::test_x") is None


def test_the_readme_says_on_which_machine_and_at_what_load_its_times_were_taken():
    """Every time in the README is a quiet-machine time on the project's 2-core machine unless it says otherwise:
    one paragraph says so, and every 'under load' time names the benchmark that made the load."""
    text = (ROOT / "README.md").read_text()
    times = re.search(r"\*\*Times in this README\.\*\*(.*?)\n\n", text, re.DOTALL)
    assert times, "no paragraph on the machine and load of the README's times"
    for fact in ("2-core", "24 GiB", "no GPU", "pinned", "native", "under load", "quiet"):
        assert fact in times.group(1), fact
    for line in text.splitlines():
        if "under load (" in line.lower():
            assert "repro_under_load.py" in line, line
