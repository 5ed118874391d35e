"""Rules for normalisation layers, 1-D/3-D convolutions, embeddings and Linear on sequences: every
statistic against the naive per-sample loop in float64, with random affine parameters and running
statistics, blank and saturated inputs included."""

import pytest
import torch
from model_zoo import Conv1d3d, Embedder, TinyTransformer, resnet_like
from reference import assert_matches_reference, naive_gradient_stats
from torch import nn

from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.gradients import ALL_STATISTICS, gradient_statistics, plan_layers


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial affine parameters and running statistics for every normalisation layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "weight", None) is not None and isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm,
                                                                         nn.LayerNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype) * 1.5 + 0.25)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype) * 0.3)
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g, dtype=m.running_mean.dtype) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=m.running_var.dtype) + 0.5)
    return model


def inputs(shape, n=6, seed=1):
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[0] = 0.0  # blank
    x[1] = 1.0  # saturated
    return x


@pytest.mark.parametrize("factory, shape, paths, channels_last", [
    (resnet_like, (1, 8, 8), {"batchnorm", "groupnorm", "instancenorm", "conv2d", "linear"}, True),
    (TinyTransformer, (1, 14, 14), {"linear", "layernorm"}, False),
    (Conv1d3d, (3, 10, 10), {"conv", "batchnorm", "linear"}, False),
])
def test_models_with_new_rules_match_the_naive_loop(factory, shape, paths, channels_last):
    torch.manual_seed(0)
    model = randomise(factory()).double().eval()
    x = inputs(shape)
    plan = plan_layers(model, x[:1])
    assert set(plan.paths().values()) == paths and not plan.generic_params  # no parameter left to vmap
    assert plan.channels_last is channels_last  # residual additions and norms run channels-last, exactly
    result = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=4)
    assert_matches_reference(result, naive_gradient_stats(model, x), ALL_STATISTICS)


def test_embedding_rule_with_repeated_ids_and_padding():
    torch.manual_seed(0)
    model = randomise(Embedder()).double().eval()
    ids = torch.tensor([[1, 1, 3, 0], [0, 0, 0, 0], [11, 2, 2, 2], [5, 6, 7, 8]])
    assert plan_layers(model, ids[:1]).paths()["emb.weight"] == "embedding"
    result = gradient_statistics(model, ids, ALL_STATISTICS, chunk_size=3)
    assert_matches_reference(result, naive_gradient_stats(model, ids), ALL_STATISTICS)


def test_batchnorm_with_batch_statistics_is_refused_and_modes_are_restored():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False), nn.Flatten(),
                          nn.Linear(2 * 6 * 6, 3))
    with pytest.raises(GradmetaError, match="1: a BatchNorm that normalises with the batch's statistics"):
        gradient_statistics(model, torch.rand(3, 1, 8, 8))
    model = randomise(resnet_like()).train()
    flags = [p.requires_grad for p in model.parameters()]
    model[0].weight.requires_grad_(False)
    gradient_statistics(model, torch.rand(3, 1, 8, 8))  # run in eval mode: running statistics, no error
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [False] + flags[1:]
