"""extract.shards: which rows each shard computes (hand-computed blocks), that the shards' parts
put together are the unsharded table bit for bit, and that the reader finds a missing part."""

import numpy as np
import pandas as pd
import pytest
import torch

from gradmeta.cnn import CNNConfig, build_cnn, to_tensor
from gradmeta.core.errors import GradmetaError
from gradmeta.features import part_path, read_concept_features, write_features
from gradmeta.prepared import PreparedData
from gradmeta.uncertainty.detectors.base import logits_layer
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import detector_instances, fit_detectors
from gradmeta.uncertainty.extraction import ExtractConfig, extract_features
from gradmeta.uncertainty.shards import alignment, block_size, shard_rows


def test_blocks_are_whole_batches():
    rows = np.arange(10, 2010)  # 2000 evaluation rows
    assert alignment(64, 256) == 256 and alignment(48, 128) == 384
    assert block_size(2000, 3, 256) == 768  # ceil(2000 / 3) = 667 -> 3 x 256
    parts = [shard_rows(rows, k, 3, 256) for k in range(3)]
    assert [len(p) for p in parts] == [768, 768, 464]
    np.testing.assert_array_equal(np.concatenate(parts), rows)
    assert len(shard_rows(rows, 0, 1, 256)) == 2000
    with pytest.raises(GradmetaError, match=r"concept 'noise': 300 evaluation images make at most 2 shards of whole "
                                            r"256-image batches; shard 2 of extract.shards \(K = 3\) would be empty"):
        shard_rows(np.arange(300), 2, 3, 256, "noise")
    with pytest.raises(GradmetaError, match="shard 3 is not among the 3 shards"):
        shard_rows(rows, 3, 3, 256)


def test_shard_params():
    assert ExtractConfig.from_params({"extract": {"shards": [0, 1, 2]}}).shards == 3
    assert ExtractConfig.from_params({"extract": {}}).shards == 1
    with pytest.raises(GradmetaError, match=r"extract.shards must be the shard indices 0, 1, ..., K-1 in order"):
        ExtractConfig.from_params({"extract": {"shards": [0, 2]}})
    with pytest.raises(GradmetaError, match="extract.shards must be a non-empty list of integers >= 0"):
        ExtractConfig.from_params({"extract": {"shards": 4}})


def test_the_parts_together_are_the_unsharded_table(tmp_path):
    torch.manual_seed(0)
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=16), seed=0).eval()
    rng = np.random.default_rng(0)
    train = to_tensor(rng.integers(0, 256, (120, 28, 28)).astype(np.uint8))
    detectors = DetectorsConfig.from_params({"detectors": {
        "use": ["mahalanobis", "knn", "vim", "react", "odin", "mc_dropout"], "targets": ["kl_uniform"],
        "chunk_size": 32, "knn": {"k": 3, "bank_size": 50, "seed": 0}, "vim": {"dim": 4},
        "mc_dropout": {"passes": 3, "seed": 0}}})
    fitted = fit_detectors(model, train, torch.from_numpy(rng.integers(0, 10, 120)), detectors, "x").detectors
    n = 150  # 140 evaluation rows (10 train rows are skipped): blocks of 64 -> 64 + 64 + 12
    split = np.where(np.arange(n) % 15 == 3, "train", "test")
    data = PreparedData("digits", "synthetic_digits", "synthetic", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
                        rng.integers(0, 10, n), split, np.arange(n))
    instances = detector_instances(logits_layer(model, train[:1]), detectors, fitted)
    kw = {"progress": False, "known": True, "detectors": detectors, "instances": instances}
    whole = extract_features(model, data, ExtractConfig(chunk_size=16), **kw)
    sharded = ExtractConfig(chunk_size=16, shards=3)
    parts = [extract_features(model, data, sharded, shard=k, **kw) for k in range(3)]
    assert [len(p) for p in parts] == [64, 64, 12]
    union = pd.concat(parts, ignore_index=True)
    assert list(union.columns) == list(whole.columns) and len(whole) == 140
    assert union.equals(whole)
    for column in whole.columns[5:]:  # bit for bit, not only equal as numbers
        assert union[column].to_numpy().tobytes() == whole[column].to_numpy().tobytes(), column
    assert union["detector/mc_entropy"].nunique() > 100  # the seeded masks differ from batch to batch

    # written as parts, read back as the one table; a missing part is named
    for k, part in enumerate(parts):
        write_features(part_path(tmp_path, "digits", k), part, {"concept": "digits", "shard": k, "shards": 3,
                                                                "model_sha256": "m"})
    write_features(part_path(tmp_path, "digits", 3), parts[0], {"concept": "digits", "shard": 3, "shards": 4,
                                                                "model_sha256": "m"})  # left by a run with K = 4
    back, meta, stale = read_concept_features(tmp_path, "digits")
    assert back.equals(whole) and meta["shards"] == 3 and [p.name for p in stale] == ["part-3.parquet"]
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "digits").num_rows == 140 + 64  # pyarrow reads the directory as one table
    part_path(tmp_path, "digits", 1).unlink()
    with pytest.raises(GradmetaError, match=r"digits/part-1.parquet: shard 1 of 3 of concept 'digits' is missing "
                                            r"\(run dvc repro extract@digits-1\)"):
        read_concept_features(tmp_path, "digits")
    write_features(part_path(tmp_path, "digits", 1), parts[2], {"concept": "digits", "shard": 2, "shards": 3,
                                                                "model_sha256": "m"})
    with pytest.raises(GradmetaError, match="part-1.parquet: is shard 2 of 3 of concept 'digits', expected shard 1"):
        read_concept_features(tmp_path, "digits")
    with pytest.raises(GradmetaError, match="no features of concept 'noise'"):
        read_concept_features(tmp_path, "noise")
