"""Per-layer rules on their own: each conv formulation, the Linear rule and the registry, against a
naive per-sample autograd loop (float64) over a grid of layer configurations."""

import time

import pytest
import torch
from model_zoo import ColourNet, StridedConvNet, WithGeneric, resnet_like
from reference import assert_matches_reference, naive_gradient_stats
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.gradients import gradient_statistics, iterate_targets
from gradmeta.uncertainty.gradients.moments import ALL_STATISTICS, Needs, moments_of
from gradmeta.uncertainty.gradients.plan import plan_layers
from gradmeta.uncertainty.gradients.rules import conv as conv_rules
from gradmeta.uncertainty.gradients.rules import formulations, register_rule, registry, rule_for
from gradmeta.uncertainty.gradients.rules.conv import (
    FORMULATIONS,
    GROUPED,
    SWAPPED,
    UNFOLDED,
    fixed_formulation,
    grouped_conv_weight_grads,
    swapped_conv_weight_grads,
    unfolded_conv_weight_grads,
)
from gradmeta.uncertainty.gradients.rules.formulations import Formulation
from gradmeta.uncertainty.gradients.rules.linear import linear_moments


def naive_weight_grads(layer: nn.Module, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per sample k: the weight gradient of <layer(a_k), g_k>, i.e. the layer's weight gradient
    for output gradient g_k; (m, weight.numel()) in the weight's entry order."""
    rows = []
    for k in range(len(a)):
        layer.zero_grad(set_to_none=True)
        (layer(a[k: k + 1]) * g[k: k + 1]).sum().backward()
        rows.append(layer.weight.grad.flatten().clone())
    return torch.stack(rows)


def inputs_for(conv: nn.Conv2d, m: int = 3, size: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, conv.in_channels, size, size, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out_shape = conv(a[:1]).shape[1:]
    return a, torch.randn(m, *out_shape, generator=gen, dtype=torch.float64)


GRID = [  # (in, out, kernel, stride, padding, dilation, groups)
    (2, 4, 3, 1, 0, 1, 1), (2, 4, 3, 2, 1, 1, 1), (3, 6, 3, 1, 2, 2, 1), (4, 6, 3, 1, 1, 1, 2),
    (4, 8, (3, 2), (2, 1), (1, 0), (1, 2), 4), (1, 5, 5, 1, 2, 1, 1), (6, 6, 1, 3, 0, 1, 3),
]


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, dilation, groups", GRID)
def test_grouped_formulation_matches_the_naive_loop(c_in, c_out, k, stride, padding, dilation, groups):
    torch.manual_seed(1)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups).double()
    a, g = inputs_for(conv)
    torch.testing.assert_close(grouped_conv_weight_grads(conv, a, g), naive_weight_grads(conv, a, g))


SWAPPABLE = [cfg for cfg in GRID if cfg[6] == 1 and cfg[3] == 1]


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, dilation, groups", SWAPPABLE)
def test_swapped_formulation_matches_the_naive_loop(c_in, c_out, k, stride, padding, dilation, groups):
    torch.manual_seed(2)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups).double()
    a, g = inputs_for(conv)
    got = swapped_conv_weight_grads(conv, a, g)  # entries in (in, out, kh, kw) order
    want = naive_weight_grads(conv, a, g).reshape(len(a), c_out, c_in, *conv.kernel_size).transpose(1, 2)
    torch.testing.assert_close(got, want.reshape(len(a), -1))


UNFOLDABLE = [cfg for cfg in GRID if cfg[6] == 1]


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, dilation, groups", UNFOLDABLE)
@pytest.mark.parametrize("channels_last", [False, True])
def test_unfolded_formulation_matches_the_naive_loop(c_in, c_out, k, stride, padding, dilation, groups, channels_last):
    torch.manual_seed(4)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups).double()
    a, g = inputs_for(conv)
    if channels_last:  # the layout the engine runs convolutions' outputs in on the CPU
        a, g = (t.contiguous(memory_format=torch.channels_last) for t in (a, g))
    torch.testing.assert_close(unfolded_conv_weight_grads(conv, a, g), naive_weight_grads(conv, a, g))


def test_the_measured_choice_takes_the_fastest_once_per_key_and_none_when_pinned(monkeypatch):
    calls = []

    def timed(name, seconds):
        def compute(module, a, g):
            calls.append(name)
            time.sleep(seconds)
            return a
        return compute

    slow = Formulation("slow", timed("slow", 0.02), lambda m: True)
    fast = Formulation("fast", timed("fast", 0.0), lambda m: True)
    never = Formulation("never", timed("never", 0.0), lambda m: False)
    conv, a = nn.Conv2d(1, 1, 1), torch.zeros(2, 1, 3, 3)
    monkeypatch.setattr(formulations, "is_pinned", lambda: False)
    monkeypatch.setattr(formulations, "_CHOSEN", {})
    assert formulations.choose([slow, fast, never], slow, conv, "k", a, a) is fast
    assert calls.count("slow") == calls.count("fast") == formulations.REPEATS + 1 and "never" not in calls
    calls.clear()
    assert formulations.choose([slow, fast], slow, conv, "k", a, a) is fast and not calls  # remembered
    assert list(formulations.chosen().values()) == ["fast"]
    assert formulations.choose([slow, fast], slow, conv, "k", a[:1], a[:1]) is fast and calls  # new shape: measured
    monkeypatch.setattr(formulations, "is_pinned", lambda: True)
    calls.clear()
    assert formulations.choose([slow, fast], slow, conv, "other", a, a) is slow and not calls


@pytest.mark.parametrize("name", ["grouped", "swapped", "unfolded"])
@pytest.mark.parametrize("factory, shape", [(StridedConvNet, (2, 15, 15)), (ColourNet, (3, 10, 9)),
                                            (resnet_like, (1, 8, 8))])
def test_the_engine_with_each_formulation_matches_the_naive_loop(monkeypatch, name, factory, shape):
    """Whatever a measurement picks (here forced; grouped where the named one does not apply), channels-last
    layout included, every statistic is exact."""
    forced = FORMULATIONS[name]
    monkeypatch.setattr(conv_rules, "formulation_for", lambda c, a, g: forced if forced.applies(c) else GROUPED)
    torch.manual_seed(5)
    model = factory().double().eval()
    x = torch.rand(5, *shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    result = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=3)
    assert_matches_reference(result, naive_gradient_stats(model, x), ALL_STATISTICS)


def test_which_formulation_a_layer_gets_when_pinned_and_which_apply():
    assert fixed_formulation(nn.Conv2d(1, 32, 5, padding=2)) is UNFOLDED
    assert fixed_formulation(nn.Conv2d(2, 4, 3, stride=2, dilation=2)) is UNFOLDED
    assert fixed_formulation(nn.Conv2d(2, 4, 3, groups=2)) is GROUPED
    assert fixed_formulation(nn.Conv1d(2, 4, 3)) is GROUPED
    assert SWAPPED.applies(nn.Conv2d(32, 64, 5)) and not SWAPPED.applies(nn.Conv2d(2, 4, 3, stride=2))
    assert not SWAPPED.applies(nn.Conv2d(2, 4, 3, groups=2)) and not UNFOLDED.applies(nn.Conv3d(2, 4, 3))


@pytest.mark.parametrize("shape", [(5, 7), (5, 3, 7)])  # 2-D input, and extra dimensions (n, T, in)
def test_linear_rule_matches_the_naive_loop(shape):
    torch.manual_seed(3)
    layer = nn.Linear(shape[-1], 4).double()
    a = torch.randn(*shape, dtype=torch.float64)
    g = torch.randn(*shape[:-1], 4, dtype=torch.float64)
    moments = linear_moments(layer, a, g, Needs.of(ALL_STATISTICS))
    want = naive_weight_grads(layer, a, g)
    stats = moments["weight"].statistics(ALL_STATISTICS)
    torch.testing.assert_close(stats["l1"], want.abs().sum(1))
    torch.testing.assert_close(stats["l2"], want.norm(dim=1))
    torch.testing.assert_close(stats["max"], want.amax(1))
    torch.testing.assert_close(stats["std"], want.std(1, unbiased=False))
    bias = g.reshape(len(g), -1, 4).sum(1)
    torch.testing.assert_close(moments["bias"].statistics(("mean",))["mean"], bias.mean(1))


def test_registry_exact_types_and_declined_configurations():
    class MyLinear(nn.Linear):  # a subclass may change forward: no rule
        pass

    assert rule_for(nn.Linear(2, 3)).name == "linear"
    assert rule_for(MyLinear(2, 3)) is None
    assert rule_for(nn.Conv2d(1, 2, 3)).name == "conv2d"
    assert rule_for(nn.Conv2d(1, 2, 3, padding_mode="reflect")) is None
    assert rule_for(nn.Conv2d(1, 2, 3, padding="same")) is None
    assert rule_for(nn.BatchNorm2d(3)).name == "batchnorm"
    assert rule_for(nn.BatchNorm2d(3, affine=False)) is None  # no parameters to measure
    assert rule_for(nn.PReLU()) is None


def test_plan_says_which_path_computes_each_parameter():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.norm = nn.PReLU(2)  # a module type without a rule
            self.fc = nn.Linear(2 * 4 * 4, 3)
            self.twice = nn.Linear(3, 3)

        def forward(self, x):
            h = self.norm(self.conv(x)).flatten(1)
            return self.twice(self.twice(self.fc(h)))

    plan = plan_layers(Shared().eval(), torch.rand(1, 1, 6, 6))
    assert plan.paths() == {"conv.weight": "conv2d", "conv.bias": "conv2d", "norm.weight": "generic",
                            "fc.weight": "linear", "fc.bias": "linear",
                            "twice.weight": "generic", "twice.bias": "generic"}  # called twice
    assert plan.generic_params == ["norm.weight", "twice.weight", "twice.bias"]


def test_a_registered_rule_is_used(monkeypatch):
    """The registry is the extension point: a rule registered for a type computes its parameters."""
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.tensor([2.0, -1.0, 0.5]))

        def forward(self, x):
            return x * self.weight

    monkeypatch.setattr(registry, "_RULES", dict(registry._RULES))
    @register_rule(Scale, name="scale")
    def scale_moments(module, a, g, needs):
        return {"weight": moments_of(a * g, needs)}  # d<w*x, g>/dw = x * g, per sample

    model = nn.Sequential(Scale(), nn.Linear(3, 2)).eval()
    x = torch.rand(4, 3)
    assert plan_layers(model, x[:1]).paths()["0.weight"] == "scale"
    got = gradient_statistics(model, x, ("l2", "max"))
    for i, ref in enumerate(naive_gradient_stats(model, x)):
        assert got["grad/0.weight/l2"][i].item() == pytest.approx(ref["grad/0.weight/l2"], rel=1e-5)
        assert got["grad/0.weight/max"][i].item() == pytest.approx(ref["grad/0.weight/max"], rel=1e-5, abs=1e-7)


def kl_uniform(logits):
    """KL(u || softmax(z)) written out: sum_c (1/C) (log(1/C) - log p_c)."""
    c = logits.shape[1]
    return (torch.full_like(logits, 1.0 / c) * (torch.log(torch.tensor(1.0 / c)) - torch.log_softmax(logits, 1))).sum()


def bce_ones(logits):
    return torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), torch.ones_like(logits), reduction="sum")


@pytest.mark.parametrize("target, loss", [("kl_uniform", kl_uniform), ("bce_ones", bce_ones)])
def test_other_gradient_targets_match_the_naive_loop(target, loss):
    from reference import assert_matches_reference

    torch.manual_seed(4)
    model = WithGeneric().double().eval()
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    got = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=2, target=target)
    assert_matches_reference(got, naive_gradient_stats(model, x, loss=loss), ALL_STATISTICS)
    mean = got["grad/fc.bias/mean"]
    assert torch.equal(mean, torch.zeros(5)) is (target == "kl_uniform")  # p - u sums to 0; sigmoid(z) - 1 not
    with pytest.raises(GradmetaError, match="unknown gradient target 'mse'"):
        gradient_statistics(model, x, target="mse")


def test_several_targets_share_one_forward_and_each_matches_its_naive_loop():
    """iterate_targets: one forward per chunk, one backward per target through the same graph (ruled
    and generic parameters); each target's values are its own naive per-sample loop's."""
    from reference import assert_matches_reference

    torch.manual_seed(5)
    model = WithGeneric().double().eval()
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    losses = {"cross_entropy": None, "kl_uniform": kl_uniform, "bce_ones": bce_ones}
    got: dict[str, dict[str, list]] = {t: {} for t in losses}
    got_features: dict[str, list] = {}
    for by_target in iterate_targets(model, x, list(losses), ALL_STATISTICS, chunk_size=2):
        assert list(by_target) == list(losses)
        for t, (result, features) in by_target.items():
            got_features.setdefault(t, []).append(result.features)
            for k, v in features.items():
                got[t].setdefault(k, []).append(v)
    for t, loss in losses.items():
        assert_matches_reference({k: torch.cat(v) for k, v in got[t].items()},
                                 naive_gradient_stats(model, x, loss=loss), ALL_STATISTICS)
        # the one pass also gives the head's input, the penultimate features every detector reads
        with torch.no_grad():
            torch.testing.assert_close(torch.cat(got_features[t]), model.act(model.conv(x)).flatten(1))
    with pytest.raises(GradmetaError, match="distinct target names"):
        next(iterate_targets(model, x, ["kl_uniform", "kl_uniform"]))
