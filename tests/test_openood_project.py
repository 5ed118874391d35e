"""OpenOOD's CIFAR-10 benchmark as a DVC project of its own (openood/): its dvc.yaml is the project's, its
params.yaml a valid preset of the project's keys, and the stand-in protocol runs end to end."""

import importlib.util
import json

import pytest
import yaml
from dvc_repo import dvc, new_repo
from PIL import Image
from stage_runner import ROOT

from gradmeta.cnn import TrainConfig
from gradmeta.datasets import DataConfig
from gradmeta.evaluation.run import EvaluateConfig
from gradmeta.meta import MetaConfig
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.extraction import ExtractConfig

PROJECT = ROOT / "openood"


def maker():
    spec = importlib.util.spec_from_file_location("make_dvc_yaml", PROJECT / "make_dvc_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_dvc_yaml_is_the_projects_with_the_code_one_folder_up():
    main, derived = (ROOT / "dvc.yaml").read_text(), (PROJECT / "dvc.yaml").read_text()
    assert derived == maker().derive(main), "openood/dvc.yaml is stale: run python openood/make_dvc_yaml.py"
    ours, theirs = yaml.safe_load(main)["stages"], yaml.safe_load(derived)["stages"]
    assert ours.keys() == theirs.keys()
    train = theirs["train"]
    assert train["cmd"].startswith("python ../stages/train.py --params params.yaml")
    assert "../src/gradmeta/cnn" in train["deps"] and "user_data/checkpoints" in train["deps"]
    assert train["outs"] == ours["train"]["outs"] and train["params"] == ours["train"]["params"]


def test_its_params_are_the_projects_keys_and_validate():
    preset = yaml.safe_load((PROJECT / "params.yaml").read_text())
    main = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert preset.keys() == main.keys()
    data = DataConfig.from_params(preset)
    assert data.known == "cifar10" and data.geometry.describe() == "32x32 RGB"
    assert {c: s.source for c, s in data.concepts.items()} == {
        "cifar10": "cifar10", "cifar100": "cifar100", "tin": "tinyimagenet", "mnist": "mnist", "svhn": "svhn",
        "texture": "textures", "places365": "places365"}
    TrainConfig.from_params(preset)
    ExtractConfig.from_params(preset)
    DetectorsConfig.from_params(preset)
    meta = MetaConfig.from_params(preset)
    groups = EvaluateConfig.from_params(preset, meta).groups
    assert groups == {"near": ("cifar100", "tin"), "far": ("mnist", "svhn", "texture", "places365")}


TINY = {"cifar10": {"source": "cifar10", "train": 300, "test": 80}}


@pytest.mark.slow
def test_the_stand_in_protocol_runs_end_to_end(tmp_path):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for name, spec in params["data"]["concepts"].items():
        spec.update(TINY.get(name, {"test": 40}))
    params["train"].update(epochs=1, architecture={"kind": "small_resnet", "widths": [8, 16], "blocks": [1, 1],
                                                   "in_channels": 3, "image_size": 32})
    params["detectors"].update(use=["mahalanobis", "knn", "vim", "react", "odin"], vim={"dim": 8})
    params["meta"].update(repeats=2, classifiers=["logistic"], known_unknowns=["svhn"],
                          feature_sets={"gradient": ["grad/*"], "detectors+gradient": ["softmax/*", "grad*/*",
                                                                                       "baseline/*", "detector/*"]})
    params["meta"]["logistic"].update(C=1.0)
    params["evaluate"]["min_accuracy"] = 0.0
    # DVC reads every dvc.yaml of the repository: the main project's needs its params.yaml too
    repo = new_repo(tmp_path / "repo", (ROOT / "params.yaml").read_text(), extra=("openood",),
                    files={"openood/params.yaml": yaml.safe_dump(params, sort_keys=False)})
    dvc(repo, "repro", "openood/dvc.yaml")
    out = repo / "openood"
    for concept in params["data"]["concepts"]:
        assert Image.open(out / f"metrics/samples/{concept}.png").mode == "RGB"
    assert not (repo / "data").exists() and not (repo / "metrics").exists()  # the main project's are untouched
    report = (out / "metrics/report.md").read_text()
    assert "## OOD detection by group" in report and "| near AUROC | near FPR@95 |" in report
    assert "OpenOOD's published numbers do not apply to this run" in report and "88.03" not in report
    headline = json.loads((out / "metrics/scenarios.json").read_text())
    for group in ("near", "far"):
        auroc = headline["ood_groups"][group]["detector/knn"]["threshold"]["auroc"]
        assert 0.0 <= auroc <= 1.0
    shown = dvc(repo, "metrics", "show", "--json").stdout
    assert "openood/metrics/headline.json" in shown and '"oo_ood_best"' in shown  # dvc metrics diff sees it
