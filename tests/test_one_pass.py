"""One pass over the model: the metric table runs one forward per chunk of the gradient engine, and every
column family (softmax, gradient statistics, GradNorm, the feature detectors) reads that pass; no detector
runs a forward of its own for the penultimate features. References: a forward counter, the detectors' own
``score`` (their own forward pass), and the formulas computed by hand from the model's layers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gradmeta.uncertainty.detectors import KNN, FeatureNorm, GradKNN, Mahalanobis, ViM
from gradmeta.uncertainty.table import metric_table


class Counted(nn.Module):
    """A small CNN with a linear head that counts the images of every forward (batch sizes in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 8 * 8, 12)
        self.head = nn.Linear(12, 3)
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        return self.head(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


def test_the_feature_detectors_read_the_engine_pass_and_run_no_forward_of_their_own():
    torch.manual_seed(0)
    model = Counted().double()
    train_x, train_y = torch.rand(40, 1, 8, 8, dtype=torch.float64), torch.arange(40) % 3
    x = torch.rand(48, 1, 8, 8, dtype=torch.float64)
    detectors = {"mahalanobis": Mahalanobis().fit(model, train_x, train_y), "knn": KNN(k=3).fit(model, train_x),
                 "vim": ViM(model.head, dim=4).fit(model, train_x), "grad_knn": GradKNN(model.head, k=3).fit(model, train_x),
                 "feature_norm": FeatureNorm()}
    model.batches.clear()
    table = metric_table(model, x, detectors=detectors, chunk_size=16, detector_chunk_size=16)
    big = [b for b in model.batches if b > 2]  # the planning probes run one image and two
    assert big == [16, 16, 16], model.batches  # the engine's three chunks; nothing else saw the images
    # each detector's own score (its own forward pass) is the reference for the column read from the pass
    for key, detector in detectors.items():
        np.testing.assert_allclose(table[f"detector/{key}"], detector.score(model, x).numpy(), rtol=1e-9, atol=1e-12)
    # GradNorm by hand from the layers: ||softmax(l) - 1/C||_1 ||a||_1, a the head's input
    with torch.no_grad():
        a = torch.relu(model.fc1(torch.relu(model.conv(x)).flatten(1)))
        p = torch.softmax(model.head(a), 1)
    want = (p - 1 / 3).abs().sum(1) * a.abs().sum(1)
    np.testing.assert_allclose(table["baseline/gradnorm"], want.numpy(), rtol=1e-12)
