"""The library face: `import gradmeta`, `metric_table` on a non-paper model (a small ResNet with
BatchNorm on 3x32x32 float tensors), detectors fitted and scored on tensors, and the README's
"Use it on your own model" block run as written."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import assert_matches_reference, naive_gradient_stats
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import roc_auc_score

import gradmeta
from gradmeta import GradmetaError, Mahalanobis, measure_all, metric_table

ROOT = Path(__file__).resolve().parents[1]


def synthetic_images(n: int, seed: int, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SYNTHETIC 3x32x32 images: four classes, each a brightness pattern plus noise (``shift`` moves
    the whole distribution: the 'other' images)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    pattern = torch.linspace(-1, 1, 32).view(1, 1, 1, 32) * (y.view(n, 1, 1, 1).float() - 1.5)
    return pattern + shift + 0.5 * torch.randn(n, 3, 32, 32, generator=g), y


@pytest.fixture
def resnet(test_models):
    return test_models["small_resnet"]


def test_import_gradmeta_changes_nothing_and_lists_its_names():
    code = ("import os, sys; before = dict(os.environ); import gradmeta; "
            "assert dict(os.environ) == before, set(os.environ) ^ set(before); "
            "assert not {'torch', 'sklearn', 'xgboost', 'pandas'} & set(sys.modules), sorted(sys.modules); "
            # the face's modules set nothing either, beyond what scikit-learn sets on its own import
            "import sklearn, xgboost, torch; before = dict(os.environ); "
            "[getattr(gradmeta, n) for n in gradmeta.__all__]; assert dict(os.environ) == before")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "ATEN_", "NPY_", "KMP_"))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert {"metric_table", "gradient_statistics", "softmax_metrics", "Mahalanobis", "KNN", "ViM", "ReAct", "ODIN",
            "LogisticMetaClassifier", "XGBoostMetaClassifier", "measure_all"} <= set(gradmeta.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        gradmeta.nothing_here  # noqa: B018


def test_metric_table_on_a_resnet_matches_a_naive_per_sample_loop(resnet):
    x, _ = synthetic_images(6, seed=2, shift=0.0)
    table = metric_table(resnet, x, targets=["kl_uniform"], chunk_size=4)
    assert len(table) == 6 and list(table.columns[:2]) == ["pred", "softmax/entropy"]
    with torch.no_grad():
        logits = resnet(x).double()
    assert table["pred"].tolist() == logits.argmax(1).tolist()
    p = logits.softmax(1)
    assert np.allclose(table["softmax/entropy"], -(p * p.log()).sum(1).numpy(), rtol=1e-5)
    grads = {k: torch.tensor(table[k].to_numpy()) for k in table.columns if k.startswith("grad/")}
    assert_matches_reference(grads, naive_gradient_stats(resnet, x), ("l1", "l2", "max", "min", "mean", "std"))
    uniform = {k.replace("grad_kl_uniform/", "grad/"): torch.tensor(table[k].to_numpy())
               for k in table.columns if k.startswith("grad_kl_uniform/")}
    kl = naive_gradient_stats(resnet, x, loss=lambda z: (-torch.log_softmax(z, 1).mean(1)).sum())
    assert_matches_reference(uniform, kl, ("l1", "l2", "max", "min", "std"))
    assert "baseline/gradnorm" in table.columns and not table.isna().any().any()


def test_a_detector_fitted_on_tensors_reaches_the_table_with_an_independent_score(resnet):
    x_train, y_train = synthetic_images(64, seed=3, shift=0.0)
    x, _ = synthetic_images(10, seed=4, shift=1.0)
    detector = Mahalanobis().fit(resnet, x_train, y_train)
    table = metric_table(resnet, x, detectors={"mahalanobis": detector})
    features = []
    hook = resnet[-1].register_forward_pre_hook(lambda m, i: features.append(i[0].detach().double()))
    with torch.no_grad():
        resnet(x_train), resnet(x)
    hook.remove()
    z_train, z = features[0].numpy(), features[1].numpy()
    classes = np.unique(y_train.numpy())
    means = np.stack([z_train[y_train.numpy() == c].mean(0) for c in classes])
    centred = z_train - means[np.searchsorted(classes, y_train.numpy())]
    precision = np.linalg.pinv(EmpiricalCovariance(assume_centered=True).fit(centred).covariance_, hermitian=True)
    d = np.stack([np.einsum("nd,de,ne->n", z - m, precision, z - m) for m in means], 1)
    # the table reads the features of the gradient engine's pass (its own chunks, channels-last on the CPU):
    # float32 rounding apart from this plain forward's, which the distance's squares amplify to about 1e-6
    assert np.allclose(table["detector/mahalanobis"], -d.min(1), rtol=1e-5)
    assert np.allclose(detector.score(resnet, x).numpy(), -d.min(1), rtol=1e-6)
    assert np.allclose(detector.predict(resnet, x).numpy(), d.min(1), rtol=1e-6)


def test_metric_table_refuses_what_it_cannot_use(resnet):
    x, _ = synthetic_images(2, seed=5, shift=0.0)
    with pytest.raises(GradmetaError, match="is not fitted"):
        metric_table(resnet, x, detectors={"mahalanobis": Mahalanobis()})
    with pytest.raises(GradmetaError, match="must be a detector"):
        metric_table(resnet, x, detectors={"odd": object()})
    with pytest.raises(GradmetaError, match="floating-point tensor"):
        metric_table(resnet, (x * 255).to(torch.uint8))
    with pytest.raises(GradmetaError, match="list of target names"):
        metric_table(resnet, x, targets="kl_uniform")
    with pytest.raises(GradmetaError, match="needs the classes"):
        Mahalanobis().fit(resnet, x)


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it on your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_readme_example_runs_on_a_small_resnet(resnet):
    """The README's block as written, on the small ResNet: the printed measures are scikit-learn's
    AUROC of the same scores, and the detector's line equals its own scores' AUROC."""
    x_in, _ = synthetic_images(48, seed=6, shift=0.0)
    x_out, _ = synthetic_images(48, seed=7, shift=1.5)
    x_train, y_train = synthetic_images(64, seed=8, shift=0.0)
    namespace = {"model": resnet, "x_in": x_in, "x_out": x_out, "x_train": x_train, "y_train": y_train}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_block(), "README.md", "exec"), namespace)  # noqa: S102 - the README's own text
    printed = [eval(line, {"nan": float("nan")}) for line in out.getvalue().splitlines()]  # noqa: S307 - dicts we printed
    assert len(printed) == 2
    meta, X, test, is_in = namespace["meta"], namespace["X"], namespace["test"], namespace["is_in"]
    assert printed[0]["auroc"] == pytest.approx(roc_auc_score(is_in[test], meta.score_samples(X[test])), abs=1e-12)
    assert printed[0]["auroc"] > 0.9  # the shifted images are easy to tell apart: the pipeline of the block works
    scores = namespace["table"]["detector/mahalanobis"].to_numpy()
    assert printed[1]["auroc"] == pytest.approx(roc_auc_score(is_in, scores), abs=1e-12)
    assert np.isnan(printed[1]["accuracy"])
    assert measure_all(scores, is_in)["auroc"] == printed[1]["auroc"]
    detector = namespace["detector"]
    torch.testing.assert_close(namespace["outlier_scores"], -namespace["in_scores"], rtol=0, atol=0)
    torch.testing.assert_close(namespace["from_batches"].score(resnet, x_in), detector.score(resnet, x_in))
    assert namespace["batched_table"].equals(gradmeta.metric_table(resnet, torch.cat([x_in, x_out])))


def test_gradnorm_and_mc_dropout_follow_the_protocol(resnet):
    """GradNorm against autograd's last-layer gradient of KL(u || p) per image; MC dropout on a model
    without dropout is refused, ODIN scores through the same call."""
    x, _ = synthetic_images(4, seed=9, shift=0.0)
    got = gradmeta.GradNorm().score(resnet, x).numpy()
    want = []
    for i in range(len(x)):
        resnet.zero_grad(set_to_none=True)
        logits = resnet(x[i: i + 1])
        (-torch.log_softmax(logits, 1).mean()).backward()
        want.append(float(resnet[-1].weight.grad.abs().sum()))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    table = metric_table(resnet, x, detectors={"gn": gradmeta.GradNorm(), "odin": gradmeta.ODIN(1000.0, 0.0)})
    np.testing.assert_allclose(table["detector/gn"], table["baseline/gradnorm"], rtol=1e-6)
    with torch.no_grad():
        tempered = torch.softmax(resnet(x).double() / 1000.0, 1).amax(1)
    np.testing.assert_allclose(table["detector/odin"], 1000.0 * torch.log(tempered).numpy(), rtol=1e-6)
    with pytest.raises(GradmetaError, match="needs a model with dropout layers"):
        gradmeta.MCDropout().score(resnet, x)
