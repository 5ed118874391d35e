"""The README's results block is generated from the committed report, and its two commands are stated."""

import re
from pathlib import Path

from gradmeta.evaluation.report import RESULTS_END, RESULTS_START, readme_section

ROOT = Path(__file__).resolve().parents[1]


def test_results_block_matches_the_committed_report():
    readme = (ROOT / "README.md").read_text()
    block = re.search(re.escape(RESULTS_START) + r".*?" + re.escape(RESULTS_END), readme, re.DOTALL)
    assert block is not None
    assert block.group(0) == readme_section((ROOT / "metrics" / "report.md").read_text())


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = ci.strip().splitlines()[-1]
    assert test_command in readme
