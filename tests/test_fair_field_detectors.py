"""The fair field's detectors against independent references: Mahalanobis++ and relative Mahalanobis
against scikit-learn's EmpiricalCovariance (normalised / raw features), the feature norm against
numpy, gradient KNN against a brute-force loop over per-sample gradients materialised by autograd
(one image at a time), GradPCA against numpy's SVD of those materialised gradients; state round
trips and bad parameters."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.covariance import EmpiricalCovariance
from torch import nn

from gradmeta import FeatureNorm, GradKNN, GradPCA, MahalanobisPlusPlus, RelativeMahalanobis
from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors import penultimate
from gradmeta.uncertainty.detectors.base import ModelSizes
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.detectors.last_layer import error_directions


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    z = rng.normal(size=(300, 5)) + np.eye(5)[y] * 3.0 + 1.0
    test = np.r_[rng.normal(size=(30, 5)) * 2.0, rng.normal(size=(10, 5)) * 0.05]  # the last 10 near the origin
    return torch.tensor(z), torch.tensor(y), torch.tensor(test)


def tied_distances(z: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """min_c squared Mahalanobis distance with class means and the tied covariance, by scikit-learn."""
    means = np.stack([z[y == c].mean(0) for c in np.unique(y)])
    tied = EmpiricalCovariance(assume_centered=True).fit(z - means[y])
    return np.min([tied.mahalanobis(test - m) for m in means], axis=0)


def test_mahalanobis_pp_is_mahalanobis_on_unit_features(features):
    z, y, test = (t.numpy() for t in features)
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    unit_test = test / np.linalg.norm(test, axis=1, keepdims=True)
    want = tied_distances(unit, y, unit_test)
    detector = MahalanobisPlusPlus().fit_features(*features[:2])
    np.testing.assert_allclose(detector.predict_features(features[2]).numpy(), want, rtol=1e-8)
    np.testing.assert_allclose(detector.score_features(features[2]).numpy(), -want, rtol=1e-8)
    # scale-invariant: only the direction of a feature counts
    np.testing.assert_allclose(detector.predict_features(features[2] * 7.5).numpy(), want, rtol=1e-8)


def test_rmd_subtracts_the_background_gaussian(features):
    z, y, test = (t.numpy() for t in features)
    background = EmpiricalCovariance().fit(z).mahalanobis(test)
    want = tied_distances(z, y, test) - background
    got = RelativeMahalanobis().fit_features(*features[:2]).predict_features(features[2])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, atol=1e-9)


def test_feature_norm_is_the_l2_norm(features):
    test = features[2]
    np.testing.assert_allclose(FeatureNorm().score_features(test).numpy(), np.linalg.norm(test.numpy(), axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(FeatureNorm().predict_features(test).numpy(), -np.linalg.norm(test.numpy(), axis=1),
                               rtol=1e-12)


def small_model(classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, classes)).double().eval()


def materialised_gradients(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Per image: the cross-entropy at the predicted class, backward, the logits layer's weight and bias
    gradients flattened into one vector (n, C (D + 1))."""
    head = model[-1]
    rows = []
    for i in range(len(x)):
        model.zero_grad(set_to_none=True)
        logits = model(x[i: i + 1])
        F.cross_entropy(logits, logits.argmax(1)).backward()
        rows.append(torch.cat([head.weight.grad, head.bias.grad[:, None]], dim=1).flatten().numpy().copy())
    return np.stack(rows)


def test_grad_knn_against_a_brute_force_loop_over_materialised_gradients():
    model = small_model()
    gen = torch.Generator().manual_seed(1)
    train, test = torch.randn(80, 6, generator=gen, dtype=torch.float64), torch.randn(25, 6, generator=gen, dtype=torch.float64)
    test[:5] *= 6.0
    g_train, g_test = materialised_gradients(model, train), materialised_gradients(model, test)
    unit_train = g_train / np.linalg.norm(g_train, axis=1, keepdims=True)
    unit_test = g_test / np.linalg.norm(g_test, axis=1, keepdims=True)
    k = 7
    want = np.sort(unit_test @ unit_train.T, axis=1)[:, -k]  # k-th largest cosine similarity
    detector = GradKNN(model[-1], k=k, bank_size=None, chunk_size=8).fit(model, train, torch.zeros(80, dtype=torch.long))
    np.testing.assert_allclose(detector.score(model, test).numpy(), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(detector.predict(model, test).numpy(), -want, rtol=0, atol=1e-6)
    # a seeded bank of 30 of the 80: the same as the brute force over those rows
    sub = GradKNN(model[-1], k=k, bank_size=30, seed=3).fit(model, train)
    rows = np.sort(np.random.Generator(np.random.PCG64(3)).choice(80, size=30, replace=False))
    want_sub = np.sort(unit_test @ unit_train[rows].T, axis=1)[:, -k]
    np.testing.assert_allclose(sub.score(model, test).numpy(), want_sub, rtol=0, atol=1e-6)


def test_error_directions_survive_a_saturated_softmax():
    logits = torch.tensor([[1000.0, 0.0, -5.0], [2.0, 1.0, 0.5]], dtype=torch.float64)
    e = error_directions(logits)
    q = torch.tensor([-(1.0 + np.exp(-5.0)), 1.0, np.exp(-5.0)], dtype=torch.float64)  # by hand: exp(l_c - l_2nd)
    torch.testing.assert_close(e[0], q / q.norm(), rtol=1e-12, atol=0)
    p = torch.softmax(logits[1], 0)
    direct = p - F.one_hot(torch.tensor(0), 3).double()
    torch.testing.assert_close(e[1], direct / direct.norm(), rtol=1e-12, atol=1e-15)


def test_grad_pca_against_numpy_svd_of_materialised_gradients():
    model = small_model(classes=4)
    gen = torch.Generator().manual_seed(2)
    train, test = torch.randn(120, 6, generator=gen, dtype=torch.float64), torch.randn(30, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (120,), generator=gen)
    g_train, g_test = materialised_gradients(model, train), materialised_gradients(model, test)
    unit_train = g_train / np.linalg.norm(g_train, axis=1, keepdims=True)
    unit_test = g_test / np.linalg.norm(g_test, axis=1, keepdims=True)
    means = np.stack([unit_train[labels.numpy() == c].mean(0) for c in range(4)])
    _, _, vt = np.linalg.svd(means, full_matrices=False)
    for dim in (2, None):
        basis = vt[: 4 if dim is None else dim]
        residual = unit_test - (unit_test @ basis.T) @ basis
        want = np.linalg.norm(residual, axis=1)
        detector = GradPCA(model[-1], dim=dim).fit(model, train, labels)
        np.testing.assert_allclose(detector.predict(model, test).numpy(), want, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(detector.score(model, test).numpy(), -want, rtol=1e-8, atol=1e-10)


def test_state_round_trips_score_exactly(features):
    model = small_model()
    gen = torch.Generator().manual_seed(4)
    train, test = torch.randn(60, 6, generator=gen, dtype=torch.float64), torch.randn(10, 6, generator=gen, dtype=torch.float64)
    labels = torch.arange(60) % 4
    z_test = torch.cat([f for f, _ in penultimate(model, test)])
    made = {"mahalanobis_pp": (MahalanobisPlusPlus, {}), "rmd": (RelativeMahalanobis, {}),
            "grad_knn": (GradKNN, {"head": model[-1], "k": 3}), "grad_pca": (GradPCA, {"head": model[-1], "dim": 3})}
    for cls, init in made.values():
        fitted = cls(**init).fit(model, train, labels)
        state = {k: v.clone() for k, v in fitted.state().items()}
        restored = cls.from_state(state, **init)
        torch.testing.assert_close(restored.score_features(z_test), fitted.score_features(z_test), rtol=0, atol=0)


def test_bad_states_and_parameters_are_refused():
    model = small_model(classes=4)
    with pytest.raises(GradmetaError, match="dim must be in"):
        GradPCA(model[-1], dim=5)
    with pytest.raises(GradmetaError, match="does not fit a logits layer"):
        GradPCA(model[-1]).restore({"basis": torch.zeros(2, 4, 3, dtype=torch.float64)})
    with pytest.raises(GradmetaError, match="does not fit a logits layer"):
        GradKNN(model[-1], k=1).restore({"bank_errors": torch.zeros(5, 4, dtype=torch.float64),
                                         "bank_inputs": torch.zeros(5, 9, dtype=torch.float64)})
    with pytest.raises(GradmetaError, match="fewer than k"):
        GradKNN(model[-1], k=50).fit(model, torch.randn(20, 6, dtype=torch.float64))
    with pytest.raises(GradmetaError, match="more training features"):
        MahalanobisPlusPlus().fit_features(torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, 1, 2]))
    with pytest.raises(GradmetaError, match=r"detectors\.grad_knn\.bank_size must be at least k \(20\), got 10"):
        DetectorsConfig.from_params({"detectors": {"grad_knn": {"k": 20, "bank_size": 10, "seed": 0}}})
    cfg = DetectorsConfig.from_params({"detectors": {"grad_pca": {"dim": 11}}})
    with pytest.raises(GradmetaError, match=r"params.yaml: detectors\.grad_pca\.dim must be at most the model's 10"):
        cfg.check_sizes(ModelSizes(features=512, classes=10, train_rows=500))
    with pytest.raises(GradmetaError, match=r"detectors\.grad_knn\.k must be at most the 40 train images"):
        DetectorsConfig.from_params({"detectors": {"grad_knn": {"k": 50, "bank_size": None, "seed": 0}}}).check_sizes(
            ModelSizes(features=512, classes=10, train_rows=40))
    with pytest.raises(GradmetaError, match=r"detectors\.grad_pca\.dim"):
        DetectorsConfig.from_params({"detectors": {"grad_pca": {"dim": 0}}})


def test_exgrad_is_the_expected_weight_gradient_l1_norm_over_y_drawn_from_p():
    model = small_model(classes=4)
    x = torch.randn(9, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    head = model[-1]
    want = []
    for i in range(len(x)):
        logits = model(x[i: i + 1])
        p = torch.softmax(logits, 1)[0].detach()
        expected = 0.0
        for y in range(4):  # every class, its gradient by autograd, weighted by p_y
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[i: i + 1]), torch.tensor([y])).backward()
            expected += p[y].item() * head.weight.grad.abs().sum().item()
        want.append(expected)
    from gradmeta import ExGrad
    np.testing.assert_allclose(ExGrad().predict(model, x).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(ExGrad().score(model, x).numpy(), -np.array(want), rtol=1e-10)
