"""Hardening, round 3, "no silent wrong answers" and "refuse tampered and stale files": each case here gave a
number (or a file) without a word before; now it is right, or it is refused in one line naming the cause."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from stage_runner import run_stage, write_params
from test_meta import mis, table, unk
from test_meta_persistence import fitted, tampered  # noqa: F401 (a fixture)
from test_stage_errors import assert_one_line_error

from gradmeta.cnn import CNNConfig, build_cnn, load_model, save_model
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.user import _decode
from gradmeta.evaluation.run import EvaluateConfig, judge_claims
from gradmeta.features import read_concept_features
from gradmeta.meta import LogisticMetaClassifier, load_fitted
from gradmeta.meta.fitting import check_split_rows
from gradmeta.prepared import PreparedData, save_prepared
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.odin import ODIN

SMALL = {"conv_channels": [4, 8], "kernel_size": 5, "padding": 2, "hidden": 16, "dropout": 0.5}


def luminance(rgb):
    """ITU-R 601 luminance of uint8 RGB, rounded: the independent reference of every colour mode."""
    rgb = rgb.astype(np.float64)
    return np.rint(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)


RAMP = (np.arange(28 * 28).reshape(28, 28) * 83) % 256  # every grey level, in a 28x28 image (no resize)


def saved(image, tmp_path, fmt="PNG", name="img"):
    path = tmp_path / f"{name}.{fmt.lower()}"
    image.save(path, fmt)
    return path


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I;16B", "P+transparency"])
def test_every_pillow_mode_a_png_can_hold_decodes_to_its_grey_value(mode, tmp_path):
    """Each mode against its own reference: the pixel values Pillow reads back, mapped by hand to grey."""
    rgb = np.stack([RAMP, RAMP[::-1], RAMP.T], axis=-1).astype(np.uint8)
    if mode == "1":
        image, expected = Image.fromarray(RAMP >= 128), np.where(RAMP >= 128, 255, 0)
    elif mode == "L":
        image, expected = Image.fromarray(RAMP.astype(np.uint8)), RAMP
    elif mode in ("P", "P+transparency"):
        image = Image.fromarray(rgb).quantize(64)
        palette = np.array(image.getpalette()[: 3 * 64]).reshape(-1, 3)
        expected = luminance(palette[np.asarray(image)])
        if mode == "P+transparency":  # index 0 transparent: shows the black background
            image.info["transparency"] = 0
            expected = np.where(np.asarray(image) == 0, 0, expected)
    elif mode == "RGB":
        image, expected = Image.fromarray(rgb), luminance(rgb)
    elif mode in ("RGBA", "LA"):
        alpha = np.where(RAMP % 2 == 0, 255, 0).astype(np.uint8)
        base = rgb if mode == "RGBA" else np.repeat(RAMP[..., None], 3, -1).astype(np.uint8)
        channels = [*np.moveaxis(base, -1, 0), alpha] if mode == "RGBA" else [RAMP.astype(np.uint8), alpha]
        image = Image.fromarray(np.stack(channels, -1), mode)
        expected = np.where(alpha == 255, luminance(base), 0)  # transparent pixels show the black background
    else:  # 16-bit grey: 0..65535 scaled to 0..255
        wide = (RAMP.astype(np.uint32) * 257).astype(np.uint16)
        image = Image.fromarray(wide).convert(mode) if mode != "I;16" else Image.fromarray(wide)
        expected = np.rint(np.asarray(Image.open(saved(image, tmp_path, name="probe")), dtype=np.float64)
                           / 65535 * 255)
    got = _decode(saved(image, tmp_path), invert=False)
    assert np.abs(got.astype(int) - np.asarray(expected, dtype=int)).max() <= 1, mode


def test_a_16_bit_ramp_keeps_its_grey_levels(tmp_path):
    """The case of the issue: a 0..65535 ramp, which clipping turned to 255 almost everywhere."""
    ramp = np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16)
    got = _decode(saved(Image.fromarray(ramp), tmp_path), invert=False)
    np.testing.assert_array_equal(got, np.rint(ramp / 65535 * 255).astype(np.uint8))
    assert (got == 255).mean() < 0.01


def test_a_cmyk_jpeg_decodes_to_the_luminance_of_its_rgb(tmp_path):
    cmyk = np.stack([RAMP, RAMP[::-1], RAMP.T, RAMP // 4], -1).astype(np.uint8)
    path = saved(Image.fromarray(cmyk, "CMYK"), tmp_path, "JPEG")
    expected = luminance(np.asarray(Image.open(path).convert("RGB")))
    assert np.abs(_decode(path, invert=False).astype(int) - expected).max() <= 1


def prepared_digits(tmp_path, n_train=200, n_test=40):
    rng = np.random.default_rng(0)
    n = n_train + n_test
    split = np.array(["train"] * n_train + ["test"] * n_test)
    save_prepared(tmp_path / "data" / "prepared" / "digits.npz",
                  PreparedData("digits", "synthetic_digits", "synthetic", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
                               rng.integers(0, 10, n), split, np.arange(n)))


def test_a_diverging_training_stops_naming_the_learning_rate(tmp_path):
    prepared_digits(tmp_path)
    write_params(tmp_path / "params.yaml", train={"learning_rate": 1e30, "epochs": 1, "architecture": SMALL})
    proc = run_stage("train", tmp_path)
    assert_one_line_error(proc, "params.yaml: train.learning_rate 1e+30 made the loss nan", "lower it")
    assert not (tmp_path / "models").exists()


def test_a_model_file_with_a_nan_weight_is_refused_where_it_is_read(tmp_path):
    model = build_cnn(CNNConfig.from_dict(SMALL), seed=0)
    with torch.no_grad():
        model.fc2.bias[3] = float("nan")
    save_model(tmp_path / "models" / "cnn.pt", model)
    with pytest.raises(GradmetaError, match=r"cnn.pt: weight fc2.bias holds NaN"):
        load_model(tmp_path / "models" / "cnn.pt")
    prepared_digits(tmp_path)
    write_params(tmp_path / "params.yaml", train={"architecture": SMALL})
    proc = run_stage("detectors", tmp_path)
    assert_one_line_error(proc, "models/cnn.pt: weight fc2.bias holds NaN")
    assert not (tmp_path / "models" / "detectors.npz").exists()


def holding_claims():
    """A summary on which claim (a) holds (two gradient metrics reach entropy), as test_meta builds them."""
    return table([mis("softmax/entropy", 0.94), mis("grad/a/l1", 0.935), mis("grad/b/l2", 0.95)])


def evaluate_config(**kw):
    return EvaluateConfig(primary_classifier="logistic", remote_concepts=(), histogram_metrics=(), min_metrics=2,
                          margin=0.01, unstable_std=0.05, **kw)


def test_no_claim_is_judged_for_a_cnn_below_the_accuracy_floor():
    verdicts, _ = judge_claims(holding_claims(), "digits", [], evaluate_config(), accuracy=0.95)
    assert verdicts[0].holds is True  # above the floor: judged
    verdicts, notes = judge_claims(holding_claims(), "digits", [], evaluate_config(), accuracy=0.08)
    assert [v.holds for v in verdicts] == [None] * 4 and notes == []
    assert all("test accuracy on digits is 0.0800, below evaluate.min_accuracy 0.5" in v.evidence for v in verdicts)
    verdicts, _ = judge_claims(holding_claims(), "digits", [], evaluate_config(min_accuracy=0.05), accuracy=0.08)
    assert verdicts[0].holds is True  # the floor is a parameter


def test_an_unknown_concept_below_min_images_is_reported_but_left_out_of_the_verdicts():
    cells = [unk(c, inp, clf, auroc) for c, inp, clf, auroc in (
        ("letters", "softmax/entropy", "threshold", 0.80), ("letters", "entropy+gradient", "logistic", 0.90),
        ("noise", "softmax/entropy", "threshold", 0.80), ("noise", "entropy+gradient", "logistic", 0.70),
        ("pooled", "softmax/entropy", "threshold", 0.80), ("pooled", "entropy+gradient", "logistic", 0.90))]
    summary = table([mis("softmax/entropy", 0.94), *cells])
    verdicts, _ = judge_claims(summary, "digits", ["letters", "noise"], evaluate_config(), 0.95,
                               {"letters": 500, "noise": 500})
    assert verdicts[1].holds is False  # better on 1 of 2 concepts: not a majority
    verdicts, notes = judge_claims(summary, "digits", ["letters", "noise"], evaluate_config(), 0.95,
                                   {"letters": 500, "noise": 36})
    assert verdicts[1].holds is True and "better on 1 of 1 concepts" in verdicts[1].evidence
    assert notes[0].startswith("`noise` has 36 evaluation images, fewer than evaluate.min_images 100")
    verdicts, _ = judge_claims(summary, "digits", ["letters", "noise"], evaluate_config(min_images=10), 0.95,
                               {"letters": 500, "noise": 36})
    assert verdicts[1].holds is False  # the floor is a parameter
    verdicts, _ = judge_claims(summary, "digits", ["letters", "noise"], evaluate_config(), 0.95,
                               {"letters": 50, "noise": 36})
    assert [v.holds for v in verdicts[1:]] == [None] * 3
    assert all("every unknown concept has fewer than evaluate.min_images 100" in v.evidence for v in verdicts[1:])


@pytest.mark.parametrize("temperature, epsilon", [(1e-300, 0.0014), (1000.0, 1e300), (0.0, 0.0), (1e30, 0.0)])
def test_odin_refuses_parameters_that_make_no_number(temperature, epsilon):
    with pytest.raises(GradmetaError, match="ODIN: temperature must be in"):
        ODIN(temperature, epsilon)
    with pytest.raises(GradmetaError, match="params.yaml: detectors.odin"):  # before any stage does work
        DetectorsConfig.from_params({"detectors": {"odin": {"temperature": temperature, "epsilon": epsilon}}})


@pytest.mark.parametrize("temperature, epsilon", [(1e-3, 1.0), (1e6, 1.0), (1.0, 0.0)])
def test_odin_at_the_ends_of_its_range_gives_finite_scores(temperature, epsilon):
    model = build_cnn(CNNConfig.from_dict(SMALL), seed=0).eval()
    scores = ODIN(temperature, epsilon).score(model, torch.rand(6, 1, 28, 28))
    assert torch.isfinite(scores).all() and ((scores > 0) & (scores <= 1)).all()


def test_the_logistic_meta_classifier_says_which_of_two_string_labels_is_positive():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] > 0, "out", "in")
    with pytest.warns(UserWarning, match="'out' \\(the larger, classes_\\[1\\]\\) is the positive class"):
        model = LogisticMetaClassifier().fit(X, y)
    assert model.classes_[1] == "out" and model.score_samples(X)[y == "out"].mean() > model.score_samples(X)[y == "in"].mean()


# ---------------------------------------------------------------------------------- tampered and stale files
def test_a_meta_file_with_swapped_splits_is_refused(fitted, tmp_path):  # noqa: F811
    frames, fit = fitted

    def swap(manifest, arrays):
        arrays["split/0/digits/train"], arrays["split/0/digits/test"] = (arrays["split/0/digits/test"],
                                                                         arrays["split/0/digits/train"])
    check_split_rows(load_fitted(tampered(fitted, tmp_path, lambda m, a: None)), frames, "meta.npz")  # untouched: fine
    with pytest.raises(GradmetaError, match="meta.npz: the meta-train/meta-test rows of 'digits' in repeat 0 are not"):
        check_split_rows(load_fitted(tampered(fitted, tmp_path, swap)), frames, "meta.npz")


def test_a_meta_file_with_fewer_repeats_than_its_config_is_refused(fitted, tmp_path):  # noqa: F811
    frames, _ = fitted
    with pytest.raises(GradmetaError, match="meta.npz: holds 1 repeats, its config says 2"):
        check_split_rows(load_fitted(tampered(fitted, tmp_path, lambda m, a: m["repeats"].pop())), frames, "meta.npz")


def test_a_meta_file_with_a_nan_threshold_or_a_huge_input_count_is_refused(fitted, tmp_path):  # noqa: F811
    with pytest.raises(GradmetaError, match="the threshold is NaN"):
        load_fitted(tampered(fitted, tmp_path, lambda m, a: a.update({"model/0/0/threshold": np.array([np.nan])})))
    with pytest.raises(GradmetaError, match="n_features_in must be an integer 1..100000"):
        load_fitted(tampered(fitted, tmp_path, lambda m, a: m["repeats"][0]["models"][0].update(n_features_in=10**12)))


def features_part(tmp_path, frame, rows):
    metadata = {"format": "gradmeta.features/1", "concept": "noise", "known": False, "shard": 0, "shards": 1,
                "model_sha256": "ab", "rows": rows}
    folder = tmp_path / "features" / "noise"
    folder.mkdir(parents=True, exist_ok=True)
    from gradmeta.features import write_features
    write_features(folder / "part-0.parquet", frame, {k: v for k, v in metadata.items() if k != "format"})
    return tmp_path / "features"


def noise_frame(index):
    n = len(index)
    return pd.DataFrame({"concept": ["noise"] * n, "index": np.asarray(index, dtype=np.int64),
                         "label": np.full(n, -1), "pred": np.zeros(n, np.int64), "correct": np.zeros(n, bool),
                         "softmax/entropy": np.linspace(0, 1, n).astype(np.float32)})


def test_a_features_part_with_a_row_removed_is_refused(tmp_path):
    whole = features_part(tmp_path, noise_frame(range(10)), [0, 10])
    assert len(read_concept_features(whole, "noise")[0]) == 10
    for kept in ([*range(4), *range(5, 10)], list(range(9)), list(range(1, 10))):  # the middle, the last, the first
        folder = features_part(tmp_path, noise_frame(kept), [0, 10])
        with pytest.raises(GradmetaError, match="part-0.parquet: holds 9 rows where its metadata names the prepared "
                                                "images 0..9"):
            read_concept_features(folder, "noise")
