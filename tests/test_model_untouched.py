"""What is the user's stays the user's: every public library call leaves the model (every submodule's
``training`` flag, every parameter and buffer) and the caller's random streams as it found them, also
after an exception, and never hands the model the caller's tensor (a model that changes its input in
place must neither alter the caller's images nor see an image twice)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradmeta import (
    DOCTOR,
    KNN,
    ODIN,
    SIRC,
    ExGrad,
    FeatureNorm,
    GradKNN,
    GradNorm,
    GradPCA,
    Mahalanobis,
    MahalanobisPlusPlus,
    MCDropout,
    ReAct,
    RelativeMahalanobis,
    ViM,
    gradient_statistics,
    metric_table,
)
from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.detectors import logits_layer


class Net(nn.Module):
    """Conv, BatchNorm, dropout and a linear head; ``in_place`` normalises its input in place."""

    def __init__(self, in_place: bool = False):
        super().__init__()
        self.in_place = in_place
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(4 * 6 * 6, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        if self.in_place:
            x.sub_(0.5).mul_(2)
        h = torch.relu(self.bn(self.conv(x))).flatten(1)
        return self.fc2(self.drop(torch.relu(self.fc1(h))))


def snapshot(model: nn.Module) -> dict:
    return {"modes": [(n, m.training) for n, m in model.named_modules()],
            "state": {k: v.clone() for k, v in model.state_dict().items()},
            "rng": torch.random.get_rng_state().clone()}


def assert_same(before: dict, model: nn.Module) -> None:
    after = snapshot(model)
    assert after["modes"] == before["modes"]
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), k
    assert torch.equal(after["rng"], before["rng"])


def mixed_modes(in_place: bool = False) -> nn.Module:
    """A train-mode model with a frozen BatchNorm, and dropout deliberately on under an eval parent."""
    torch.manual_seed(0)
    model = Net(in_place)
    model.train()
    model.bn.eval()  # frozen
    return model


def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(40, 1, 6, 6, generator=g), torch.randint(0, 3, (40,), generator=g)


def calls(model, x, y):
    head = model.fc2
    fitted = [Mahalanobis(), MahalanobisPlusPlus(), RelativeMahalanobis(), KNN(k=3), ViM(head, 4), ReAct(head),
              GradKNN(head, k=3), GradPCA(head), SIRC()]
    yield "gradient_statistics", lambda: gradient_statistics(model, x)
    yield "metric_table", lambda: metric_table(model, x, factors=True, probabilities=True, targets=["kl_uniform"])
    yield "logits_layer", lambda: logits_layer(model, x[:1])
    for d in fitted:
        yield f"{type(d).__name__}.fit", lambda d=d: d.fit(model, x, y)
        yield f"{type(d).__name__}.score", lambda d=d: d.score(model, x)
    for d in (ODIN(), MCDropout(passes=3), GradNorm(), FeatureNorm(), ExGrad(), DOCTOR()):
        yield f"{type(d).__name__}.score", lambda d=d: d.score(model, x)
    knn = KNN(k=3).fit(model, x, y)  # fitted here, before anything is compared
    yield "metric_table(detectors)", lambda: metric_table(model, x, detectors={"knn": knn, "mc": MCDropout(passes=2)})


FITTED = {"Mahalanobis", "MahalanobisPlusPlus", "RelativeMahalanobis", "KNN", "ViM", "ReAct", "GradKNN", "GradPCA", "SIRC"}


@pytest.mark.parametrize("name", [n for n, _ in calls(mixed_modes(), *data())])
def test_no_public_call_changes_the_model_or_the_random_streams(name):
    model = mixed_modes()
    x, y = data()
    items = dict(calls(model, x, y))
    if name.endswith(".score") and name.split(".")[0] in FITTED:
        items[name.replace(".score", ".fit")]()  # fitted first, outside what is compared
    before = snapshot(model)
    x_before = x.clone()
    items[name]()
    assert_same(before, model)
    assert torch.equal(x, x_before)


def test_the_state_comes_back_after_an_exception():
    model = mixed_modes()
    x = torch.rand(3, 1, 6, 6)
    before = snapshot(model)
    with pytest.raises(GradmetaError):
        gradient_statistics(model, x, labels=torch.tensor([0, 1, 7]))  # 7: no such class
    assert_same(before, model)


def test_a_model_that_changes_its_input_in_place_sees_each_image_once():
    x, _ = data()
    x_before = x.clone()
    model = mixed_modes(in_place=True).eval()
    table = metric_table(model, x, chunk_size=8)
    assert torch.equal(x, x_before)  # the caller's images are untouched
    one_by_one = [metric_table(model, x[i: i + 1].clone()).iloc[0] for i in (0, 9)]
    for i, row in zip((0, 9), one_by_one, strict=True):  # image 0 (the planning probe's) normalised once
        assert table.iloc[i]["grad/all/l2"] == pytest.approx(row["grad/all/l2"], rel=1e-5)
        assert table.iloc[i]["softmax/entropy"] == pytest.approx(row["softmax/entropy"], rel=1e-5)
    knn = KNN(k=3).fit(model, x, None)
    assert torch.equal(x, x_before)
    torch.testing.assert_close(knn.score(model, x[:5]), knn.score(model, x[:5].clone()))
