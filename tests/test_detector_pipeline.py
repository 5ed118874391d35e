"""The detectors in the pipeline: fitted state saved without pickle and restored exactly, the
``detector/<name>`` and ``grad_<target>/`` columns of the features table against independent
references (scipy, a per-image autograd loop), and the params group's errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference import naive_gradient_stats
from scipy.spatial.distance import mahalanobis

from gradmeta.cnn import CNNConfig, build_cnn, to_tensor
from gradmeta.core.errors import GradmetaError
from gradmeta.prepared import PreparedData
from gradmeta.uncertainty.detectors import penultimate
from gradmeta.uncertainty.detectors.base import logits_layer
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.fitted import detector_instances, fit_detectors, load_detectors, save_detectors
from gradmeta.uncertainty.extraction import ExtractConfig, extract_features

SMALL = CNNConfig(conv_channels=(4, 8), hidden=16)


@pytest.fixture
def model_and_train():
    torch.manual_seed(0)
    model = build_cnn(SMALL, seed=0).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 120)
    return model, to_tensor(images), torch.from_numpy(labels)


def config(**kw):
    base = {"use": ["mahalanobis", "knn", "vim", "react", "odin", "mc_dropout"], "targets": ["kl_uniform"],
            "knn": {"k": 3, "bank_size": 50, "seed": 0}, "vim": {"dim": 4}, "mc_dropout": {"passes": 3, "seed": 0}}
    return DetectorsConfig.from_params({"detectors": {**base, **kw}})


def test_saved_state_restores_every_detector_exactly(tmp_path, model_and_train):
    model, x, y = model_and_train
    cfg = config()
    fitted = fit_detectors(model, x, y, cfg, "ab" * 32)
    assert list(fitted.detectors) == ["mahalanobis", "knn", "vim", "react"]
    assert len(fitted.detectors["knn"].bank) == 50  # the seeded subsample
    save_detectors(tmp_path / "a.npz", fitted)
    save_detectors(tmp_path / "b.npz", fitted)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    restored = load_detectors(tmp_path / "a.npz", logits_layer(model, x[:1]), cfg)
    z = torch.cat([f for f, _ in penultimate(model, x[:20])]).double()
    for name, detector in fitted.detectors.items():
        torch.testing.assert_close(restored[name].score_features(z), detector.score_features(z), rtol=0, atol=0)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as npz:  # plain arrays, no object arrays
        assert all(npz[k].dtype != object for k in npz.files)
    with pytest.raises(GradmetaError, match="fitted on another model than this cnn.pt"):  # its stored sha256 is compared
        load_detectors(tmp_path / "a.npz", logits_layer(model, x[:1]), cfg, "cd" * 32)
    assert set(load_detectors(tmp_path / "a.npz", logits_layer(model, x[:1]), cfg, "ab" * 32)) == set(fitted.detectors)
    with pytest.raises(GradmetaError, match="fitted with other detector params than params.yaml"):
        load_detectors(tmp_path / "a.npz", logits_layer(model, x[:1]), config(knn={"k": 4, "bank_size": 50, "seed": 0}))
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(GradmetaError, match="c.npz: not a readable fitted detectors file"):
        load_detectors(tmp_path / "c.npz", logits_layer(model, x[:1]), cfg)


def test_features_table_columns_against_references(model_and_train):
    model, x, y = model_and_train
    cfg = config(use=["mahalanobis", "odin", "mc_dropout"])
    fitted = fit_detectors(model, x, y, cfg, "x").detectors
    rng = np.random.default_rng(1)
    data = PreparedData("letters", "synthetic_letters", "synthetic", rng.integers(0, 256, (6, 28, 28)).astype(np.uint8),
                        np.full(6, -1), np.full(6, "test"), np.arange(6))
    frame = extract_features(model, data, ExtractConfig(chunk_size=4), progress=False, known=False, detectors=cfg,
                             instances=detector_instances(logits_layer(model, x[:1]), cfg, fitted))
    detector_cols = [c for c in frame.columns if c.startswith("detector/")]
    assert detector_cols == ["detector/mahalanobis", "detector/odin", "detector/mc_entropy",
                             "detector/mc_mutual_information", "detector/mc_variation_ratio"]
    images = to_tensor(data.images)
    # grad_kl_uniform: the naive per-sample loop of KL(uniform || softmax) (up to a constant: the
    # cross-entropy against the uniform distribution has the same gradient)
    naive = naive_gradient_stats(model, images, loss=lambda logits: -F.log_softmax(logits, 1).mean())
    for col in ("fc2.weight/l2", "conv1.weight/max", "all/l1"):
        want = [row[f"grad/{col}"] for row in naive]
        np.testing.assert_allclose(frame[f"grad_kl_uniform/{col}"], want, rtol=2e-4, atol=1e-7)
    # Mahalanobis: scipy on the penultimate features with the fitted means and precision
    z = torch.cat([f for f, _ in penultimate(model, images)]).double().numpy()
    means, precision = (t.numpy() for t in (fitted["mahalanobis"].means, fitted["mahalanobis"].precision))
    want = [-min(mahalanobis(v, m, precision) ** 2 for m in means) for v in z]
    np.testing.assert_allclose(frame["detector/mahalanobis"], want, rtol=1e-5)
    # ODIN: per image, the perturbed input's max tempered softmax, as T log of it
    for i in range(len(images)):
        xi = images[i: i + 1].clone().requires_grad_(True)
        loss = -F.log_softmax(model(xi) / 1000.0, 1).max()
        (grad,) = torch.autograd.grad(loss, xi)
        with torch.no_grad():
            score = F.softmax(model(xi - 0.0014 * grad.sign()) / 1000.0, 1).max().double()
        assert frame["detector/odin"][i] == pytest.approx(1000.0 * torch.log(score).item(), rel=1e-5)
    assert (frame["detector/mc_variation_ratio"] <= 0).all()  # negated uncertainties


@pytest.mark.parametrize("group, message", [
    ({"use": ["odin", "energy"]}, "detectors.use must be a list of names from mahalanobis"),
    ({"targets": ["cross_entropy"]}, "detectors.targets must be a list of names from kl_uniform, bce_ones"),
    ({"knn": {"k": 10, "bank_size": 5}}, "detectors.knn.bank_size must be at least k (10), got 5"),
    ({"odin": {"temperature": 0}}, "detectors.odin.temperature must be a number >= 0.001 and <= 1000000.0"),
    ({"mc_dropout": {"passes": 1}}, "detectors.mc_dropout.passes must be an integer >= 2"),
    ({"react": {"percentil": 90}}, "detectors.react.percentil is not a parameter; did you mean detectors.react.percentile?"),
])
def test_bad_detector_params_name_the_parameter(group, message):
    with pytest.raises(GradmetaError) as err:
        DetectorsConfig.from_params({"detectors": group})
    assert message in str(err.value), str(err.value)


def test_fitting_logs_a_line_per_detector(model_and_train, caplog):
    import logging

    model, x, y = model_and_train
    with caplog.at_level(logging.INFO, logger="gradmeta.test"):
        fit_detectors(model, x, y, config(), "ab" * 32, logging.getLogger("gradmeta.test"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith(f"penultimate features of {len(x)} train images in ")
    assert [line.split(" in ")[0] for line in lines[1:]] == [
        "fitted mahalanobis (1 of 4)", "fitted knn (2 of 4)", "fitted vim (3 of 4)", "fitted react (4 of 4)"]


@pytest.mark.parametrize("terminal", [True, False])
def test_the_detector_fits_show_a_bar_on_a_terminal_only(model_and_train, stderr_on, terminal):
    err = stderr_on(terminal)
    model, x, y = model_and_train
    fit_detectors(model, x, y, config(), "ab" * 32)  # the features, then 4 detectors: 5 steps
    shown = err.getvalue()
    assert ("detectors:" in shown and "/5 [" in shown) is terminal, shown  # tqdm redraws at most every 0.1 s
    assert ("detectors" in shown) is terminal
