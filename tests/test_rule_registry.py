"""A new layer type is one file and its test: a rule registered inside this test module, with its refusal
and its layout wish declared with it, reaches the plan, the library (``gradient_statistics``) and the
pipeline's features table (``extract_features``), exactly (a naive per-sample autograd loop as reference);
unregistered, the same modules take the generic path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import assert_matches_reference, naive_gradient_stats
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.prepared import PreparedData
from gradmeta.uncertainty.extraction import ExtractConfig, extract_features
from gradmeta.uncertainty.gradients import ALL_STATISTICS, gradient_statistics, plan_layers
from gradmeta.uncertainty.gradients.moments import moments_of
from gradmeta.uncertainty.gradients.rules import register_rule, unregister_rule


class ChannelScale(nn.Module):
    """y[n, c, ...] = x[n, c, ...] * weight[c]; ``mixes`` pretends to mix the batch (the rule refuses it)."""

    def __init__(self, channels: int, mixes: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(channels) + 0.5)
        self.mixes = mixes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.reshape(1, -1, *([1] * (x.dim() - 2)))


@pytest.fixture
def channel_scale_rule():
    def mixes(module: nn.Module) -> str | None:
        return "a ChannelScale that mixes the batch has no per-sample gradient" if getattr(module, "mixes", False) else None

    @register_rule(ChannelScale, name="channel_scale", channels_last=True, refuses=mixes)
    def channel_scale(module, a, g, needs):
        # sample k's gradient of weight[c] is the sum over positions of g_k[c] * a_k[c]
        per_sample = (a * g).flatten(2).sum(2)
        return {"weight": moments_of(per_sample, needs)}

    yield channel_scale
    unregister_rule(ChannelScale)


def model_with(scale: ChannelScale) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 5, stride=3), scale, nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).double()


def test_a_rule_registered_in_one_place_reaches_the_plan_the_library_and_the_pipeline(channel_scale_rule):
    model = model_with(ChannelScale(3)).eval()
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    plan = plan_layers(model, x[:1])
    assert plan.paths()["1.weight"] == "channel_scale"
    assert [layer.channels_last for layer in plan.fast if layer.name == "1"] == [True]  # its layout wish, taken
    got = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=2)
    assert_matches_reference(got, naive_gradient_stats(model, x), ALL_STATISTICS)

    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    data = PreparedData("noise", "uniform_noise", "synthetic", images, np.full(4, -1), np.full(4, "test"), np.arange(4))
    frame = extract_features(model.float(), data, ExtractConfig(chunk_size=2), progress=False, known=False)
    reference = naive_gradient_stats(model.double(), torch.from_numpy(images).double()[:, None] / 255)
    for stat in ("l1", "l2", "max"):
        np.testing.assert_allclose(frame[f"grad/1.weight/{stat}"], [r[f"grad/1.weight/{stat}"] for r in reference],
                                   rtol=1e-4)


def test_the_rules_refusal_is_the_plans_and_without_the_rule_the_generic_path_takes_over(channel_scale_rule):
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    with pytest.raises(GradmetaError, match="^1: a ChannelScale that mixes the batch has no per-sample gradient"):
        plan_layers(model_with(ChannelScale(3, mixes=True)).eval(), x[:1])
    unregister_rule(ChannelScale)
    model = model_with(ChannelScale(3, mixes=True)).eval()  # no rule, no refusal: the generic path
    assert plan_layers(model, x[:1]).paths()["1.weight"] == "generic"
    assert_matches_reference(gradient_statistics(model, x, ALL_STATISTICS), naive_gradient_stats(model, x),
                             ALL_STATISTICS)
