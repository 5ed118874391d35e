"""The factors of every layer's per-sample gradient (``factor/<layer>/...``) against a per-image
autograd loop, and the identities the critique rests on (Igoe et al. 2022): at the logits layer, with
the cross-entropy at the predicted class, the weight gradient's L1 norm is 2 (1 - p_max) ||a||_1 and
its L2 norm ||p - e_pred||_2 ||a||_2, computed here by hand from the logits and penultimate features."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradmeta import metric_table
from gradmeta.cnn import CNNConfig, build_cnn
from gradmeta.uncertainty.detectors import penultimate

SMALL = CNNConfig(conv_channels=(4, 8), hidden=16)


@pytest.fixture
def model_and_images():
    model = build_cnn(SMALL, seed=0).double().eval()
    images = torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return model, images


def test_the_logits_layer_gradient_norms_are_confidence_times_feature_norm(model_and_images):
    model, x = model_and_images
    table = metric_table(model, x, factors=True, chunk_size=5)
    z, logits = next(penultimate(model, x, chunk_size=len(x)))
    p = torch.softmax(logits, 1).numpy()
    a = z.numpy()
    e = p - np.eye(10)[p.argmax(1)]
    l1 = 2 * (1 - p.max(1)) * np.abs(a).sum(1)
    l2 = np.linalg.norm(e, axis=1) * np.linalg.norm(a, axis=1)
    np.testing.assert_allclose(table["grad/fc2.weight/l1"], l1, rtol=1e-9)
    np.testing.assert_allclose(table["grad/fc2.weight/l2"], l2, rtol=1e-9)
    np.testing.assert_allclose(table["factor/fc2/input_l1"], np.abs(a).sum(1), rtol=1e-12)
    np.testing.assert_allclose(table["factor/fc2/outgrad_l1"], 2 * (1 - p.max(1)), rtol=1e-9)
    np.testing.assert_allclose(table["factor/fc2/outgrad_l2"], np.linalg.norm(e, axis=1), rtol=1e-9)
    np.testing.assert_allclose(table["grad/fc2.weight/l1"], table["factor/fc2/input_l1"] * table["factor/fc2/outgrad_l1"],
                               rtol=1e-9)


def naive_factors(model, x):
    """Per image: every layer's input and the cross-entropy's gradient w.r.t. its output, by autograd."""
    layers = {"conv1": model.conv1, "conv2": model.conv2, "fc1": model.fc1, "fc2": model.fc2}
    rows = []
    for i in range(len(x)):
        seen: dict = {}
        handles = [m.register_forward_hook(lambda mod, inp, out, n=n, seen=seen: seen.__setitem__(n, (inp[0], out)))
                   for n, m in layers.items()]
        logits = model(x[i: i + 1])
        for h in handles:
            h.remove()
        outputs = [seen[n][1] for n in layers]
        grads = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1)), outputs)
        row = {}
        for n, g in zip(layers, grads, strict=True):
            a = seen[n][0].detach()
            row |= {f"factor/{n}/input_l1": a.abs().sum().item(), f"factor/{n}/input_l2": a.norm().item(),
                    f"factor/{n}/outgrad_l1": g.abs().sum().item(), f"factor/{n}/outgrad_l2": g.norm().item()}
        rows.append(row)
    return rows


def test_every_ruled_layer_has_its_factors_against_a_per_image_loop(model_and_images):
    model, x = model_and_images
    table = metric_table(model, x, factors=True, chunk_size=5)
    reference = naive_factors(model, x)
    columns = [c for c in table.columns if c.startswith("factor/")]
    assert len(columns) == 16 and set(columns) == set(reference[0])
    for key in columns:
        np.testing.assert_allclose(table[key], [r[key] for r in reference], rtol=1e-12, err_msg=key)
    assert not any(c.startswith("factor/") for c in metric_table(model, x[:2]).columns)  # only when asked
