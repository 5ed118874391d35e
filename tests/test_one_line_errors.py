"""Hardening, round 3, "one error line, not a traceback": each case here ended in a traceback (or a torch or
numpy error from deep inside) before; now it is one GradmetaError line that names the file or the parameter."""

import errno
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from stage_runner import run_stage, write_params
from test_meta_persistence import fitted, tampered  # noqa: F401 (a fixture)
from test_stage_errors import assert_one_line_error
from test_untrusted_files import npy_header, one_line
from test_wrong_answers import SMALL, prepared_digits
from torch import nn

import gradmeta
from gradmeta.cli import main
from gradmeta.cnn import CNNConfig, build_cnn, load_model, save_model
from gradmeta.core.atomic import write_bytes
from gradmeta.core.errors import GradmetaError
from gradmeta.features import METADATA_KEY, read_features
from gradmeta.meta import load_fitted


# ------------------------------------------------------------------------------ the library on a user's model
class Net(nn.Module):
    """A model whose forward returns what ``kind`` says, around a logits layer."""

    def __init__(self, kind="tensor"):
        super().__init__()
        self.kind, self.body, self.head = kind, nn.Linear(8, 6), nn.Linear(6, 3)

    def forward(self, x):
        logits = self.head(torch.relu(self.body(x.flatten(1))))
        return {"tuple": (logits, logits), "dict": {"logits": logits}, "1-D": logits[:, 0]}.get(self.kind, logits)


@pytest.mark.parametrize("kind, message", [
    ("tuple", "the model returned a tuple; gradmeta needs its logits, one tensor (N, classes)"),
    ("dict", "the model returned a dict; gradmeta needs its logits, one tensor (N, classes)"),
    ("1-D", "the model returned a tensor of shape (1,); gradmeta needs its logits, one tensor (N, classes)"),
])
def test_a_model_that_returns_no_logits_tensor_is_named(kind, message):
    x = torch.rand(10, 8)
    with pytest.raises(GradmetaError) as err:
        gradmeta.metric_table(Net(kind), x)
    assert message in one_line(err)
    with pytest.raises(GradmetaError, match="the model returned a"):
        gradmeta.KNN(k=2).fit(Net(kind), x, torch.randint(0, 3, (10,)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_images_of_another_dtype_than_the_weights_are_named(dtype):
    x = torch.rand(10, 8).to(dtype)
    with pytest.raises(GradmetaError) as err:
        gradmeta.metric_table(Net(), x)
    assert f"images are {dtype} but the model's weights are torch.float32" in one_line(err)
    with pytest.raises(GradmetaError, match=f"images are {dtype}"):
        gradmeta.Mahalanobis().fit(Net(), x, torch.randint(0, 3, (10,)))
    assert len(gradmeta.metric_table(Net().to(dtype), x)) == 10 if dtype == torch.float64 else True  # matching: fine


def test_saved_states_of_the_wrong_shape_or_missing_a_key_are_named():
    with pytest.raises(GradmetaError, match=r"Mahalanobis: saved means \(3, 4\) and precision \(5, 5\) are not"):
        gradmeta.Mahalanobis.from_state({"means": torch.rand(3, 4), "precision": torch.rand(5, 5)})
    with pytest.raises(GradmetaError, match=r"Mahalanobis: the state lacks 'precision'; it holds \['means'\]"):
        gradmeta.Mahalanobis.from_state({"means": torch.rand(3, 4)})


def test_a_knn_bank_of_another_width_than_the_features_is_named():
    bank = torch.nn.functional.normalize(torch.rand(5, 4, dtype=torch.float64), dim=1)
    knn = gradmeta.KNN.from_state({"bank": bank}, k=2)
    with pytest.raises(GradmetaError) as err:
        knn.score(Net(), torch.rand(10, 8))
    assert "KNN: features of shape (10, 6), but its fitted state is for 4 features" in one_line(err)
    with pytest.raises(GradmetaError, match="KNN: features of shape"):
        knn.predict_features(torch.rand(3, 6))


# ---------------------------------------------------------------------------------------- files handed to us
def test_a_model_file_without_config_or_with_a_list_for_weights_is_named(tmp_path):
    save_model(tmp_path / "cnn.pt", build_cnn(CNNConfig.from_dict(SMALL), seed=0))
    ckpt = torch.load(tmp_path / "cnn.pt", weights_only=True)
    torch.save({**ckpt, "config": None}, tmp_path / "a.pt")
    torch.save({**ckpt, "state_dict": list(ckpt["state_dict"].values())}, tmp_path / "b.pt")
    with pytest.raises(GradmetaError, match="a.pt: not a gradmeta model checkpoint \\(its config is not a mapping"):
        load_model(tmp_path / "a.pt")
    with pytest.raises(GradmetaError, match="b.pt: not a gradmeta model checkpoint \\(its state_dict is not a mapping"):
        load_model(tmp_path / "b.pt")


@pytest.mark.parametrize("metadata, message", [
    (b"{not json", "metadata: not JSON"),
    (b"[1, 2]", "metadata: expected a JSON object, got list"),
    (b"[" * 200_000 + b"]" * 200_000, "metadata: JSON nested more than 32 deep"),
])
def test_features_metadata_that_is_not_a_json_object_is_named(tmp_path, metadata, message):
    table = pa.table({"x": [1.0]}).replace_schema_metadata({METADATA_KEY: metadata})
    pq.write_table(table, tmp_path / "part-0.parquet")
    with pytest.raises(GradmetaError) as err:
        read_features(tmp_path / "part-0.parquet")
    assert message in one_line(err)


def test_a_meta_file_with_a_deeply_nested_manifest_is_named(fitted, tmp_path):  # noqa: F811
    path = tampered(fitted, tmp_path, lambda m, a: m.update(deep=json.loads("[" * 500 + "]" * 500)))
    with pytest.raises(GradmetaError, match="not a valid meta classifier file \\(manifest: JSON nested more than 32"):
        load_fitted(path)


def test_a_user_npz_whose_header_declares_a_negative_dimension_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile("mine.npz", "w") as zf:
        zf.writestr("images.npy", npy_header((-5, 28, 28)))
    from test_untrusted_files import user

    from gradmeta.datasets import prepare_concept
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("npz", "mine.npz"))
    assert "mine.npz: not a readable npz file (array 'images'" in one_line(err)


# ------------------------------------------------------------------------------------- params out of range
@pytest.mark.parametrize("train, message", [
    ({"seed": 2**70}, "train.seed must be an integer >= 0 and <= 4294967295, got 1180591620717411303424"),
    ({"threads": 10**12}, "train.threads must be a positive integer and <= 1024, got 1000000000000"),
    ({"architecture": {**SMALL, "padding": 2000}}, "train.architecture.padding must be less than kernel_size (5)"),
    ({"architecture": {**SMALL, "hidden": 10**6}}, "train.architecture.hidden must be a size that keeps the CNN "
                                                   "within 100,000,000 weights"),
    ({"val_fraction": 0.999}, "train.val_fraction 0.999 leaves 0 of 200 train images to train on, fewer than the 10 "
                              "classes"),
])
def test_train_params_out_of_range_are_one_line(tmp_path, train, message):
    prepared_digits(tmp_path)
    write_params(tmp_path / "params.yaml", train={"architecture": SMALL, **train})
    assert_one_line_error(run_stage("train", tmp_path), "params.yaml: " + message)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("fraction, sides", [(0.01, "59 meta-train and 1 meta-test"), (0.99, "0 meta-train and 60")])
def test_a_meta_test_fraction_that_leaves_a_side_empty_is_one_line(fraction, sides):
    from test_meta import frame

    from gradmeta.meta import MetaConfig, fit_all
    rng = np.random.default_rng(0)
    frames = {"digits": frame("digits", 200, rng), "noise": frame("noise", 60, rng)}
    cfg = MetaConfig(test_fraction=fraction, unknown_concepts=("noise",), single_metrics=("softmax/entropy",))
    with pytest.raises(GradmetaError) as err:
        fit_all(frames, cfg, {})
    assert (f"params.yaml: meta.test_fraction {fraction:g} splits the 60 rows of concept 'noise' into {sides}"
            in one_line(err))


# ------------------------------------------------------------------------------------------- gradmeta share
def error_lines(result):
    """The ``error:`` lines of a command's output (run in-process, it also says the kernels cannot be pinned)."""
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def dvc_repo(path):
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=path, check=True,
                   env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    return path


@pytest.mark.parametrize("url, message", [
    ("s3://bucket/results", "dvc remote r: s3 is supported, but requires 'dvc-s3' to be installed"),
    ("missing/folder", "the folder {repo}/missing/folder does not exist"),
    ("{repo}/file.txt/under", "the folder {repo}/file.txt/under does not exist"),
])
def test_share_to_a_remote_it_cannot_use_is_one_line(tmp_path, monkeypatch, url, message):
    repo = dvc_repo(tmp_path / "repo")
    (repo / "file.txt").write_text("a file, not a folder")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "r", url.format(repo=repo)], check=True)
    result = CliRunner().invoke(main, ["share", "--remote", "r"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(error_lines(result)) == 1 and message.format(repo=repo) in error_lines(result)[0], result.output
    assert not (repo / "missing").exists()  # nothing created


def test_share_without_a_remote_says_the_whole_advice(tmp_path, monkeypatch):
    monkeypatch.chdir(dvc_repo(tmp_path / "repo"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    result = CliRunner().invoke(main, ["share"])
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    assert "no remote specified" in result.output and "dvc remote" in result.output.split("no remote specified")[1]


# --------------------------------------------------------------------------------------- outputs, the README
def test_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file")
    with pytest.raises(GradmetaError) as err:
        write_bytes(tmp_path / "file" / "out.json", b"{}")  # a folder that is a file
    assert f"{tmp_path / 'file' / 'out.json'}: cannot write it (" in one_line(err)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("pathlib.Path.write_bytes", full)
    with pytest.raises(GradmetaError) as err:
        write_bytes(tmp_path / "out.json", b"{}")
    assert "out.json: cannot write it (No space left on device); nothing was written" in one_line(err)
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # no temporary file left behind


def test_readme_results_without_a_readme_is_one_line(tmp_path):
    (tmp_path / "report.md").write_text("# report\n")
    result = CliRunner().invoke(main, ["readme-results", "--readme", str(tmp_path / "README.md"),
                                       "--report", str(tmp_path / "report.md")])
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    assert "README.md: README not found" in result.output
