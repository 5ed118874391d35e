"""The `gradmeta` console script."""

import re

import numpy as np
from click.testing import CliRunner
from stage_runner import write_params

from gradmeta.cli import main
from gradmeta.datasets import load_prepared


def test_prepare_writes_the_requested_concept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml")
    result = CliRunner().invoke(main, ["prepare", "--concept", "noise", "--out-dir", "out"])
    assert result.exit_code == 0, result.output
    data = load_prepared(tmp_path / "out" / "noise.npz")
    assert data.images.shape == (60, 28, 28) and (data.source, data.kind) == ("uniform_noise", "generated")
    assert "noise: 60 images (test 60; no labels), generated: uniform noise -> out/noise.npz" in result.output
    assert np.array_equal(data.labels, np.full(60, -1))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["noise.npz"]


def test_prepare_rejects_an_unknown_concept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml")
    result = CliRunner().invoke(main, ["prepare", "--concept", "shapes"])
    assert result.exit_code == 1
    assert "error: params.yaml: no concept 'shapes' in data.concepts or data.user_concepts" in result.output
    assert not (tmp_path / "data").exists()


def test_readme_results_check_detects_a_stale_block(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("**Data source: SYNTHETIC** x\n\n<!-- main-table:start -->\n| a |\n<!-- main-table:end -->\n\n"
                      "## The paper's claims\n\n- **(a) holds.** y.\n\n## Next\n")
    readme = tmp_path / "README.md"
    readme.write_text("# t\n<!-- results:start (generated from metrics/report.md by `gradmeta readme-results`) -->\n"
                      "old\n<!-- results:end -->\n")
    runner = CliRunner()
    stale = runner.invoke(main, ["readme-results", "--readme", str(readme), "--report", str(report), "--check"])
    assert stale.exit_code == 1 and "stale" in stale.output
    assert runner.invoke(main, ["readme-results", "--readme", str(readme), "--report", str(report)]).exit_code == 0
    assert "| a |" in readme.read_text() and "(a) holds" in readme.read_text()
    fresh = runner.invoke(main, ["readme-results", "--readme", str(readme), "--report", str(report), "--check"])
    assert fresh.exit_code == 0


def test_help_names_dvc_repro_for_the_pipeline():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "dvc repro" in result.output


def test_prepare_writes_outside_the_tracked_prepared_folder_by_default(tmp_path, monkeypatch):
    write_params(tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["prepare", "--concept", "noise"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "prepared-check" / "noise.npz").is_file() and not (tmp_path / "data").exists()


def test_the_train_stage_logs_a_line_per_epoch(tmp_path):
    from stage_runner import run_stage
    from test_wrong_answers import SMALL, prepared_digits
    prepared_digits(tmp_path)
    write_params(tmp_path / "params.yaml", train={"architecture": SMALL, "epochs": 2})
    proc = run_stage("train", tmp_path)  # stderr is not a TTY here, as in CI or dvc queue logs
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("train: epoch ")]
    assert [line.split(":")[1].strip() for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all(re.search(r"loss \d+\.\d{4}, train accuracy \d\.\d{4}, validation accuracy \d\.\d{4}, \d+\.\d s$", line)
               for line in lines), lines
