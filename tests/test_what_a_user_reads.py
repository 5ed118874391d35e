"""Hardening, round 3, "what a user reads": every error names the file or the parameter at fault, says what
is wrong in the user's terms, and comes where the mistake is first visible, not stages later. (The kernel
opt-out's values and the advice for a preloaded numpy are in test_kernels.py.)"""

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from stage_runner import TINY, run_stage, write_params
from test_one_line_errors import error_lines
from test_stage_errors import assert_one_line_error
from test_untrusted_files import one_line

from gradmeta.cli import main
from gradmeta.core.console import stage_item
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.meta import MetaConfig
from gradmeta.runtime import resolve_device
from gradmeta.uncertainty.shards import shard_rows


@pytest.mark.parametrize("value", ["extract", "@digits", "extract@", "dvc.yaml:"])
def test_a_malformed_dvc_stage_is_named_not_reported_missing(value, monkeypatch):
    monkeypatch.setenv("DVC_STAGE", value)
    with pytest.raises(GradmetaError) as err:
        stage_item(None, "--concept")
    assert f"DVC_STAGE={value!r} in the environment is not a stage address '<stage>@<item>'" in one_line(err)
    monkeypatch.delenv("DVC_STAGE")
    with pytest.raises(GradmetaError, match="--concept is required outside a DVC stage"):
        stage_item(None, "--concept")


def test_an_empty_list_of_unknown_concepts_is_refused_where_meta_reads_it():
    with pytest.raises(GradmetaError) as err:
        MetaConfig.from_params({"data": {"known": "digits", "concepts": TINY["data"]["concepts"]},
                                "meta": {"unknown_concepts": []}})
    assert ("params.yaml: meta.unknown_concepts must be null (every concept but digits) or a non-empty list of "
            "concepts from letters, omniglot, cifar10, noise, got []") in one_line(err)


def test_a_concept_without_evaluation_images_is_named_not_told_to_shard_less():
    with pytest.raises(GradmetaError) as err:
        shard_rows(np.array([], dtype=np.int64), 0, 1, 32, "letters")
    assert "data.concepts.letters: its prepared data have no evaluation images (no test split" in one_line(err)
    assert "use K <=" not in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: 2\n  epochs: 5\n", "the key 'epochs' is given twice in one mapping at line 3"),
    ("train: {}\ntrain: {}\n", "the key 'train' is given twice in one mapping at line 2"),
    ("train:\n  architecture: {hidden: 8, hidden: 16}\n", "the key 'hidden' is given twice in one mapping at line 2"),
])
def test_a_key_given_twice_is_refused_as_dvc_refuses_it(tmp_path, text, message):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(GradmetaError) as err:
        load_params(tmp_path / "params.yaml")
    assert f"params.yaml: {message}" in one_line(err)


def test_a_key_given_twice_stops_a_stage_in_one_line(tmp_path):
    write_params(tmp_path / "params.yaml")
    text = (tmp_path / "params.yaml").read_text().replace("train:\n", "train:\n  epochs: 9\n", 1)
    (tmp_path / "params.yaml").write_text(text)
    assert_one_line_error(run_stage("train", tmp_path), "params.yaml: the key 'epochs' is given twice")


@pytest.mark.parametrize("shards, message", [
    ('"0"', "extract.shards must be a non-empty list of integers >= 0, got '0'"),
    ("[1, 0]", "extract.shards must be the shard indices 0, 1, ..., K-1 in order"),
])
def test_gradmeta_check_names_a_value_that_dvc_itself_reads_without_naming_it(tmp_path, monkeypatch, shards, message):
    params = yaml.safe_dump({k: dict(v) for k, v in TINY.items()}, sort_keys=False)
    (tmp_path / "params.yaml").write_text(params.replace("shards:\n  - 0\n", f"shards: {shards}\n"))
    assert f"shards: {shards}" in (tmp_path / "params.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    assert f"params.yaml: {message}" in error_lines(result)[0]


def test_gradmeta_check_passes_the_shipped_params(tmp_path, monkeypatch):
    from stage_runner import ROOT
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0 and "params.yaml: every parameter group reads as the stages will read it" in result.output


def test_a_device_error_names_the_parameter():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(GradmetaError) as err:
        resolve_device("cuda", "params.yaml: train.device")
    assert "params.yaml: train.device is 'cuda' but torch sees no CUDA device" in one_line(err)


def test_device_auto_takes_a_gpu_where_torch_sees_one(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a CUDA-less fake of a machine with one
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda") == torch.device("cuda")
