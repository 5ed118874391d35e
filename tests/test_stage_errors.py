"""Bad input to a stage: one clear line naming the file or parameter, non-zero exit, no output left."""

import numpy as np
import pandas as pd
import pytest
from stage_runner import TINY, run_stage, write_params


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


CONCEPTS = TINY["data"]["concepts"]


@pytest.mark.parametrize("data, fragment", [
    ({"source": "web"}, "data.source must be one of synthetic, real"),
    ({"concepts": {**CONCEPTS, "letters": {"source": "emnist_letters", "test": -5}}},
     "data.concepts.letters.test must be a positive integer"),
    ({"concepts": {**CONCEPTS, "digits": {"source": "emnist_digits", "train": 10, "test": 0}}},
     "data.concepts.digits.test"),
])
def test_download_bad_params(tmp_path, data, fragment):
    write_params(tmp_path / "params.yaml", data=data)
    proc = run_stage("download", tmp_path, "--concept", "letters")
    assert_one_line_error(proc, "params.yaml", fragment)
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


def test_download_of_an_undefined_concept(tmp_path):
    write_params(tmp_path / "params.yaml")
    proc = run_stage("download", tmp_path, "--concept", "shapes")
    assert_one_line_error(proc, "no concept 'shapes' in data.concepts or data.user_concepts")


def test_download_of_user_data_that_does_not_decode_leaves_nothing(tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG not really")
    write_params(tmp_path / "params.yaml", data={"user_concepts": {"pics": {"format": "folder", "path": "pics"}}})
    proc = run_stage("download", tmp_path, "--concept", "pics")
    assert_one_line_error(proc, "pics/broken.png: cannot decode the image")
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


def test_download_real_without_network_or_archive(tmp_path):
    write_params(tmp_path / "params.yaml", data={"source": "real", "real": {
        "raw_dir": "data/raw", "mirror": "http://127.0.0.1:9", "retries": 0, "timeout": 2}})
    proc = run_stage("download", tmp_path, "--concept", "digits")
    assert_one_line_error(proc, "download of http://127.0.0.1:9/gzip.zip failed", "no network? place gzip.zip in "
                          "data/raw by hand (data.real.raw_dir sets that folder), or set data.real.mirror")
    assert not (tmp_path / "data").exists()
    assert "synthetic" not in proc.stderr.lower()


def test_download_real_with_corrupted_hand_placed_archive(tmp_path):
    write_params(tmp_path / "params.yaml", data={"source": "real", "real": {
        "raw_dir": "raw", "mirror": None, "retries": 0, "timeout": 2}})
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "gzip.zip").write_bytes(b"PK\x03\x04 truncated")
    proc = run_stage("download", tmp_path, "--concept", "letters")
    assert_one_line_error(proc, "raw/gzip.zip: checksum mismatch, expected md5 58c8d27c78d21e728a6bc7b3cc06412e")
    assert not (tmp_path / "data").exists()


def test_train_with_truncated_npz(tmp_path):
    write_params(tmp_path / "params.yaml")
    (tmp_path / "digits.npz").write_bytes(b"PK\x03\x04" + bytes(50))
    proc = run_stage("train", tmp_path, "--data", "digits.npz")
    assert_one_line_error(proc, "digits.npz: not a readable prepared data file")
    assert not (tmp_path / "models").exists() and not (tmp_path / "metrics").exists()


def test_train_with_missing_data_and_bad_param(tmp_path):
    write_params(tmp_path / "params.yaml")
    proc = run_stage("train", tmp_path, "--data", "nowhere.npz")
    assert_one_line_error(proc, "nowhere.npz: prepared data file not found")
    write_params(tmp_path / "params.yaml", train={"epochs": -1})
    proc = run_stage("train", tmp_path)
    assert_one_line_error(proc, "train.epochs must be a positive integer, got -1")
    assert not (tmp_path / "models").exists()


def test_train_on_a_known_concept_without_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "mine.npz", images=images)
    write_params(tmp_path / "params.yaml", data={"known": "mine", "user_concepts": {
        "mine": {"format": "npz", "path": "mine.npz", "train": 8}}})
    assert run_stage("download", tmp_path, "--concept", "mine").returncode == 0
    proc = run_stage("train", tmp_path)
    assert_one_line_error(proc, "data/prepared/mine.npz: concept 'mine' has images without labels; data.known must name")
    assert not (tmp_path / "models").exists()


def test_train_with_npz_missing_arrays(tmp_path):
    write_params(tmp_path / "params.yaml")
    np.savez(tmp_path / "digits.npz", images=np.zeros((3, 28, 28), np.uint8))
    proc = run_stage("train", tmp_path, "--data", "digits.npz")
    assert_one_line_error(proc, "digits.npz: not a gradmeta prepared file, missing arrays")


def test_extract_missing_model_and_unknown_concept(tmp_path):
    write_params(tmp_path / "params.yaml")
    proc = run_stage("extract", tmp_path, "--concept", "letters", "--data", "x.npz")
    assert_one_line_error(proc, "x.npz: prepared data file not found")
    from gradmeta.datasets import PreparedData, save_prepared
    save_prepared(tmp_path / "letters.npz", PreparedData("letters", "synthetic_letters", "synthetic",
                                                         np.zeros((2, 28, 28), np.uint8),
                                                         np.zeros(2), np.full(2, "test"), np.arange(2)))
    proc = run_stage("extract", tmp_path, "--concept", "letters", "--data", "letters.npz", "--model", "none.pt")
    assert_one_line_error(proc, "none.pt: model file not found")
    proc = run_stage("extract", tmp_path, "--concept", "shapes")
    assert_one_line_error(proc, "--concept 'shapes' is not among the concepts (digits, letters, omniglot, cifar10, noise)")
    proc = run_stage("extract", tmp_path, "--concept", "digits", "--data", "letters.npz")
    assert_one_line_error(proc, "letters.npz: holds concept 'letters', expected 'digits'")
    assert not (tmp_path / "data").exists()


def write_feature_files(directory, digits_correct=None, drop=None):
    from gradmeta.features import part_path, write_features
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for concept, n in [("digits", 40), ("letters", 10), ("omniglot", 10), ("cifar10", 10), ("noise", 10)]:
        correct = (rng.random(n) > 0.3) if concept == "digits" else np.zeros(n, dtype=bool)
        if concept == "digits" and digits_correct is not None:
            correct[:] = digits_correct
        f = pd.DataFrame({"concept": concept, "index": np.arange(n), "label": 0, "pred": 0, "correct": correct})
        for col in ("softmax/entropy", "softmax/max_prob", "softmax/energy", "softmax/margin", "softmax/max_logit",
                    "grad/fc.weight/l2", "grad/all/l2", "baseline/gradnorm", "grad_kl_uniform/fc.weight/l2",
                    "grad_bce_ones/fc.weight/l2", "detector/knn"):
            f[col] = rng.random(n).astype(np.float32)
        if drop and concept == "digits":
            f = f.drop(columns=[drop])
        write_features(part_path(directory, concept, 0), f, {"model_sha256": "x", "source": "synthetic_digits",
                                                            "kind": "synthetic", "concept": concept, "shard": 0,
                                                            "shards": 1})


def test_meta_features_missing_a_column(tmp_path):
    write_params(tmp_path / "params.yaml")
    write_feature_files(tmp_path / "data" / "features", drop="pred")
    proc = run_stage("meta", tmp_path)
    assert_one_line_error(proc, "digits/part-0.parquet: missing column 'pred'")
    assert not (tmp_path / "models").exists()


def test_meta_with_a_shard_missing(tmp_path):
    write_params(tmp_path / "params.yaml", extract={"shards": [0, 1, 2]})
    features = tmp_path / "data" / "features"
    write_feature_files(features)
    from gradmeta.features import part_path, write_features
    for concept in sorted(p.name for p in features.iterdir()):  # every part 0 says: one of 3
        frame = pd.read_parquet(part_path(features, concept, 0))
        write_features(part_path(features, concept, 0), frame, {"model_sha256": "x", "concept": concept, "shard": 0,
                                                                 "shards": 3})
    proc = run_stage("meta", tmp_path)
    assert_one_line_error(proc, "digits/part-1.parquet: shard 1 of 3 of concept 'digits' is missing "
                                "(run dvc repro extract@digits-1)")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("shards, fragment", [
    ([], "params.yaml: extract.shards must be a non-empty list"),
    ([0, 1], "part-0.parquet: made by 1 extract shard(s), but params.yaml: extract.shards names 2"),
])
def test_meta_checks_extract_shards_against_the_parts_it_reads(tmp_path, shards, fragment):
    """With extract.shards: [] DVC has no extract stage at all; meta must not read the old parts silently."""
    write_params(tmp_path / "params.yaml", extract={"shards": shards})
    write_feature_files(tmp_path / "data" / "features")
    assert_one_line_error(run_stage("meta", tmp_path), fragment)
    assert not (tmp_path / "models").exists()


def test_meta_unknown_concept_feature_set_and_empty_scenario(tmp_path):
    write_feature_files(tmp_path / "data" / "features")
    write_params(tmp_path / "params.yaml", meta={"unknown_concepts": ["letters", "shapes"]})
    assert_one_line_error(run_stage("meta", tmp_path), "meta.unknown_concepts must be a list of names from")
    write_params(tmp_path / "params.yaml", meta={"feature_sets": {"odd": ["curvature/*"]}})
    assert_one_line_error(run_stage("meta", tmp_path), "meta.feature_sets.odd: 'curvature/*' matches no feature column")
    write_feature_files(tmp_path / "data" / "features", digits_correct=True)
    write_params(tmp_path / "params.yaml")
    assert_one_line_error(run_stage("meta", tmp_path), "misclassification scenario is empty")
    assert not (tmp_path / "models").exists()


def test_evaluate_without_meta_models(tmp_path):
    write_params(tmp_path / "params.yaml")
    write_feature_files(tmp_path / "data" / "features")
    assert_one_line_error(run_stage("evaluate", tmp_path), "meta.npz: meta classifiers file not found")
    assert not (tmp_path / "metrics").exists()
