"""Each detector against an independent reference on small data (scipy, scikit-learn, numpy by
hand, a per-image autograd loop)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import mahalanobis
from sklearn.neighbors import NearestNeighbors
from torch import nn

from gradmeta.cnn import CNNConfig, build_cnn
from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors import (
    KNN,
    ODIN,
    Mahalanobis,
    ReAct,
    ViM,
    mc_dropout_uncertainty,
    penultimate,
)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    z = rng.normal(size=(300, 5)) + np.eye(5)[y] * 3.0
    test = rng.normal(size=(40, 5)) * 2.0
    return torch.tensor(z), torch.tensor(y), torch.tensor(test)


def test_mahalanobis_against_scipy(features):
    z, y, test = (t.numpy() for t in features)
    means = np.stack([z[y == c].mean(0) for c in range(3)])
    centred = z - means[y]
    shared = centred.T @ centred / len(z)
    inverse = np.linalg.inv(shared)
    want = [min(mahalanobis(t, means[c], inverse) ** 2 for c in range(3)) for t in test]
    got = Mahalanobis().fit_features(*features[:2]).predict_features(features[2])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(Mahalanobis().fit_features(*features[:2]).score_features(features[2]).numpy(),
                               -np.array(want), rtol=1e-9)


def test_knn_against_scikit_learn(features):
    z, _, test = (t.numpy() for t in features)
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    query = test / np.linalg.norm(test, axis=1, keepdims=True)
    want = NearestNeighbors(n_neighbors=7).fit(unit).kneighbors(query)[0][:, -1]
    got = KNN(k=7, chunk_size=16).fit_features(features[0]).predict_features(features[2])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)
    with pytest.raises(GradmetaError, match="fewer than k"):
        KNN(k=500).fit_features(features[0])


def head(d_in=5, classes=3, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d_in, classes).double()


def test_react_by_hand(features):
    z, _, test = (t.numpy() for t in features)
    h = head()
    w, b = h.weight.detach().numpy(), h.bias.detach().numpy()
    clip = np.percentile(z, 80)
    logits = np.minimum(test, clip) @ w.T + b
    want = np.log(np.exp(logits).sum(1))
    got = ReAct(h, percentile=80).fit_features(features[0]).score_features(features[2])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)


def test_vim_by_hand_with_an_svd(features):
    z, _, test = (t.numpy() for t in features)
    h = head()
    w, b = h.weight.detach().numpy(), h.bias.detach().numpy()
    origin = -np.linalg.pinv(w) @ b
    _, _, vt = np.linalg.svd(z - origin, full_matrices=True)  # rows: principal directions, descending
    residual_basis = vt[2:].T  # off the 2 leading directions
    train_logits = z @ w.T + b
    alpha = train_logits.max(1).mean() / np.linalg.norm((z - origin) @ residual_basis, axis=1).mean()
    virtual = alpha * np.linalg.norm((test - origin) @ residual_basis, axis=1)
    logits = test @ w.T + b
    want = np.log(np.exp(logits).sum(1)) - virtual  # energy minus virtual logit
    got = ViM(h, dim=2).fit_features(features[0]).score_features(features[2])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-7)


def test_odin_against_a_per_image_autograd_loop():
    model = build_cnn(CNNConfig(conv_channels=(3, 4), hidden=16), seed=0).double().eval()
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    temperature, epsilon = 100.0, 0.01
    want = []
    for i in range(len(x)):
        xi = x[i: i + 1].clone().requires_grad_(True)
        s = F.softmax(model(xi) / temperature, dim=1)
        (-torch.log(s.max())).backward()
        xp = xi.detach() - epsilon * xi.grad.sign()
        want.append(F.softmax(model(xp) / temperature, dim=1).max().item())
    got = ODIN(temperature, epsilon).score(model, x, chunk_size=2)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(ODIN(temperature, epsilon).predict(model, x).numpy(), -np.array(want), rtol=1e-10)
    assert not got.equal(ODIN(temperature, 0.0).score(model, x))  # the perturbation moved the scores


def test_mc_dropout_without_dropout_agrees_and_with_it_is_seeded():
    model = build_cnn(CNNConfig(conv_channels=(3, 4), hidden=16, dropout=0.0), seed=0).eval()
    x = torch.rand(6, 1, 28, 28)
    out = mc_dropout_uncertainty(model, x, passes=5)
    p = torch.softmax(model(x).double(), dim=1)
    torch.testing.assert_close(out["entropy"], -(p * p.log()).sum(1))
    assert torch.all(out["mutual_information"] <= 1e-12) and torch.all(out["variation_ratio"] == 0)
    noisy = build_cnn(CNNConfig(conv_channels=(3, 4), hidden=16, dropout=0.5), seed=0).eval()
    a = mc_dropout_uncertainty(noisy, x, passes=8, seed=3)
    b = mc_dropout_uncertainty(noisy, x, passes=8, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a) and bool((a["mutual_information"] > 0).any())
    assert not noisy.training and not any(m.training for m in noisy.modules())  # modes restored
    # the dropout feeds the head: passes rerun only dropout + head, and give T full passes' result exactly
    full = mc_dropout_uncertainty(noisy, x, passes=8, seed=3, chunk_size=4, reuse_prefix=False)
    fast = mc_dropout_uncertainty(noisy, x, passes=8, seed=3, chunk_size=4)
    assert all(torch.equal(full[k], fast[k]) for k in full)
    assert not any(m.training for m in noisy.modules())
    # the penultimate features handed in (computed once for the feature detectors) replace the prefix pass
    z = torch.cat([f for f, _ in penultimate(noisy, x, chunk_size=4)]).double()
    given = mc_dropout_uncertainty(noisy, x, passes=8, seed=3, chunk_size=4, head_inputs=z)
    assert all(torch.equal(full[k], given[k]) for k in full)
    # a slice starting at a batch boundary, told its first batch number, gets the whole set's values
    tail = mc_dropout_uncertainty(noisy, x[4:], passes=8, seed=3, chunk_size=4, reuse_prefix=False, first_batch=1)
    assert all(torch.equal(full[k][4:], tail[k]) for k in full)
    assert not torch.equal(mc_dropout_uncertainty(noisy, x[4:], passes=8, seed=3, chunk_size=4)["entropy"],
                           tail["entropy"])  # batch 0's masks on those images: other values


def test_mc_dropout_finds_the_dropout_that_feeds_the_head_in_one_probe():
    from gradmeta.uncertainty.detectors.mcdropout import _dropout_before_head

    noisy = build_cnn(CNNConfig(conv_channels=(3, 4), hidden=16, dropout=0.5), seed=0).eval()
    dropouts = [m for m in noisy.modules() if isinstance(m, nn.Dropout)]
    linears = [m for m in noisy.modules() if isinstance(m, nn.Linear)]
    calls = []
    handle = noisy.register_forward_pre_hook(lambda m, i: calls.append(len(i[0])))
    assert _dropout_before_head(noisy, dropouts, torch.rand(1, 1, 28, 28)) == (dropouts[0], linears[-1])
    handle.remove()
    assert calls == [1]  # one forward of the one-image probe
    # a dropout before a hidden layer: the passes cannot start at the head
    hidden_first = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    assert _dropout_before_head(hidden_first, [hidden_first[1]], torch.rand(1, 1, 28, 28)) is None


def test_penultimate_features_are_the_heads_input():
    model = build_cnn(CNNConfig(conv_channels=(3, 4), hidden=16), seed=0).eval()
    x = torch.rand(7, 1, 28, 28)
    (z, logits), = list(penultimate(model, x, chunk_size=8))
    torch.testing.assert_close(logits, model.fc2(z))
    torch.testing.assert_close(logits, model(x))


def test_scatter_matrix_over_row_blocks_equals_the_centred_product(monkeypatch):
    from gradmeta.uncertainty.detectors import base
    monkeypatch.setattr(base, "ROWS_PER_BLOCK", 3)  # 10 rows: blocks of 3, 3, 3, 1
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.normal(size=(10, 4)))
    means = torch.from_numpy(rng.normal(size=(2, 4)))
    index = torch.from_numpy(rng.integers(0, 2, 10))
    centred = z.numpy() - means.numpy()[index.numpy()]
    np.testing.assert_allclose(base.scatter_matrix(z, means, index).numpy(), centred.T @ centred, rtol=1e-12)
    shifted = z.numpy() - means.numpy()[0]
    np.testing.assert_allclose(base.scatter_matrix(z, means[0]).numpy(), shifted.T @ shifted, rtol=1e-12)
