import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from gradmeta.cnn.model import CNNConfig, build_cnn
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import PreparedData
from gradmeta.features import part_path, read_concept_features, read_features, write_features
from gradmeta.uncertainty.extraction import ExtractConfig, extract_features
from gradmeta.uncertainty.softmax import softmax_metrics

SMALL = CNNConfig(conv_channels=(4, 8), hidden=32)


def test_softmax_metrics_hand_computed():
    logits = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    m = softmax_metrics(logits)
    z = math.exp(2) + 2
    p = [math.exp(2) / z, 1 / z, 1 / z]
    assert m["softmax/max_prob"][0].item() == pytest.approx(p[0])
    assert m["softmax/margin"][0].item() == pytest.approx(p[0] - p[1])
    assert m["softmax/entropy"][0].item() == pytest.approx(-sum(q * math.log(q) for q in p))
    assert m["softmax/energy"][0].item() == pytest.approx(-math.log(z))
    assert m["softmax/max_logit"][0].item() == 2.0
    assert m["softmax/entropy"][1].item() == pytest.approx(math.log(3))
    assert m["softmax/margin"][1].item() == pytest.approx(0.0)
    saturated = softmax_metrics(torch.tensor([[1e4, -1e4, 0.0]]))
    assert all(torch.isfinite(v).all() for v in saturated.values())
    assert saturated["softmax/entropy"].item() == pytest.approx(0.0, abs=1e-12)


def prepared(concept, n=7, seed=0):
    rng = np.random.default_rng(seed)
    split = np.array(["train", "test"] * n)[:n] if concept == "digits" else np.full(n, "test")
    return PreparedData(concept, "synthetic_digits", "synthetic", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, n), split, np.arange(n))


def test_table_columns_types_and_values():
    model = build_cnn(SMALL, seed=0)
    data = prepared("digits", n=9)
    frame = extract_features(model, data, ExtractConfig(chunk_size=2), progress=False, known=True)
    test_rows = np.nonzero(data.split == "test")[0]
    assert list(frame["index"]) == list(test_rows)
    names = [n for n, _ in model.named_parameters()]
    stats = ["l1", "l2", "max", "min", "mean", "std"]
    expected = (["concept", "index", "label", "pred", "correct"]
                + [f"softmax/{s}" for s in ("entropy", "max_prob", "margin", "energy", "max_logit")]
                + [f"grad/{n}/{s}" for n in names for s in stats] + [f"grad/all/{s}" for s in stats]
                + ["baseline/gradnorm"]
                + [f"factor/{layer}/{f}" for layer in ("conv1", "conv2", "fc1", "fc2")
                   for f in ("input_l1", "input_l2", "outgrad_l1", "outgrad_l2")]
                + [f"prob/{c}" for c in range(10)])
    assert list(frame.columns) == expected
    metric = expected[5:]
    assert all(frame[c].dtype == np.float32 for c in metric)
    x = torch.from_numpy(data.images[test_rows].astype(np.float32) / 255).unsqueeze(1)
    logits = model.eval()(x)
    np.testing.assert_array_equal(frame["pred"], logits.argmax(1).numpy())
    probs = torch.softmax(logits.double(), 1).detach().numpy()  # REL-U's input, by torch from the logits
    np.testing.assert_allclose(frame[[f"prob/{c}" for c in range(10)]].to_numpy(), probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(frame["correct"], frame["pred"] == frame["label"])
    # GradNorm: L1 norm of the last layer's weight gradient of CE against the uniform distribution
    for i in range(len(x)):
        model.zero_grad()
        out = model(x[i: i + 1])
        (-F.log_softmax(out, 1).mean()).backward()
        assert frame["baseline/gradnorm"][i] == pytest.approx(model.fc2.weight.grad.abs().sum().item(), rel=1e-4)


def test_unknown_concept_is_never_correct():
    model = build_cnn(SMALL, seed=0)
    data = prepared("letters", n=5)
    data.labels[:] = 0  # the same labels an unknown concept's predictions may hit
    frame = extract_features(model, data, ExtractConfig(), progress=False, known=False)
    assert len(frame) == 5 and not frame["correct"].any()


def test_evaluation_rows_are_every_image_outside_the_train_split():
    data = prepared("digits", n=6)
    data.split[:] = ["train", "test", "background", "train", "evaluation", "test"]
    frame = extract_features(build_cnn(SMALL, seed=0), data, ExtractConfig(), progress=False, known=False)
    assert list(frame["index"]) == [1, 2, 4, 5]


def test_write_read_round_trip_is_byte_identical(tmp_path):
    model = build_cnn(SMALL, seed=0)
    frame = extract_features(model, prepared("noise", n=6), ExtractConfig(statistics=("l2", "skew")), progress=False,
                             known=False)
    meta = {"concept": "noise", "model_sha256": "ab" * 32, "extract": {"chunk_size": 128}}
    write_features(tmp_path / "a.parquet", frame, meta)
    write_features(tmp_path / "b.parquet", frame, meta)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    back, got_meta = read_features(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert got_meta["model_sha256"] == "ab" * 32 and got_meta["format"] == "gradmeta.features/2"
    assert pq.read_schema(tmp_path / "a.parquet").field("grad/all/l2").type == "float"


def test_read_errors(tmp_path):
    with pytest.raises(GradmetaError, match="features file not found"):
        read_features(tmp_path / "none.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(GradmetaError, match="not a readable Parquet file"):
        read_features(tmp_path / "bad.parquet")
    model = build_cnn(SMALL, seed=0)
    frame = extract_features(model, prepared("noise", n=3), ExtractConfig(), progress=False, known=False)
    write_features(tmp_path / "f.parquet", frame.drop(columns=["pred"]), {})
    with pytest.raises(GradmetaError, match="f.parquet: missing column 'pred'"):
        read_features(tmp_path / "f.parquet")


def test_extract_params_validation():
    with pytest.raises(GradmetaError, match="extract.statistics must be a list of names"):
        ExtractConfig.from_params({"extract": {"statistics": ["l1", "median"]}})
    with pytest.raises(GradmetaError, match="extract.chunk_size must be a positive integer"):
        ExtractConfig.from_params({"extract": {"chunk_size": 0}})


@pytest.mark.parametrize("known", [True, False])
def test_a_correct_column_changed_after_extraction_is_refused(tmp_path, known):
    model = build_cnn(SMALL, seed=0)
    frame = extract_features(model, prepared("digits", n=9), ExtractConfig(), progress=False, known=known)
    meta = {"concept": "digits", "model_sha256": "ab" * 32, "shard": 0, "shards": 1, "known": known}
    write_features(part_path(tmp_path, "digits", 0), frame, meta)
    assert read_concept_features(tmp_path, "digits")[0]["correct"].tolist() == frame["correct"].tolist()
    tampered = frame.copy()
    tampered.loc[1, "correct"] = not tampered.loc[1, "correct"]  # flipped: the target the meta classifiers learn
    write_features(part_path(tmp_path, "digits", 0), tampered, meta)
    kind = "label == pred" if known else "False for every row of an unknown concept"
    with pytest.raises(GradmetaError, match=rf"column correct is not {kind} in 1 row\(s\) \(first: row 1\)"):
        read_concept_features(tmp_path, "digits")
