import pytest
import torch
from model_zoo import MLP, BatchNormNet, ColourNet, LayoutAssumingNet, SequenceNet, StridedConvNet, TiedNet, ViewNet
from reference import assert_matches_reference, naive_gradient_stats
from torch import nn

from gradmeta.cnn.model import CNNConfig, build_cnn
from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.gradients import (
    ALL_STATISTICS,
    PAPER_STATISTICS,
    gradient_statistics,
    plan_layers,
)


def random_images(n, shape=(1, 28, 28), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g)


def randomise_bn(model):
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model


@pytest.mark.parametrize("statistics", [PAPER_STATISTICS, ALL_STATISTICS, ("l1", "l2"), ("std",), ("mean",),
                                        ("kurt", "max"), ("min", "l2", "skew")])
def test_default_cnn_matches_naive_loop(statistics):
    model = build_cnn(CNNConfig(), seed=0)
    images = random_images(6)
    result = gradient_statistics(model, images, statistics, chunk_size=4)
    assert_matches_reference(result, naive_gradient_stats(model, images), statistics)
    assert all(v.shape == (6,) and v.dtype == torch.float32 for v in result.values())
    names = [n for n, _ in model.named_parameters()]
    expected_keys = [f"grad/{n}/{s}" for n in names for s in statistics] + [f"grad/all/{s}" for s in statistics]
    assert list(result) == expected_keys


@pytest.mark.parametrize("factory, shape", [
    (StridedConvNet, (2, 15, 15)),
    (ColourNet, (3, 10, 9)),
    (lambda: randomise_bn(BatchNormNet()), (1, 8, 8)),
    (ViewNet, (2, 6, 6)),
    (LayoutAssumingNet, (1, 5, 5)),
    (lambda: build_cnn(CNNConfig(conv_channels=(3, 5), hidden=16), seed=3).to(memory_format=torch.channels_last),
     (1, 28, 28)),
    (MLP, (12,)),
    (SequenceNet, (4, 5)),
    (TiedNet, (6,)),
])
def test_other_architectures_match_naive_loop(factory, shape):
    torch.manual_seed(0)
    model = factory()
    images = random_images(5, shape, seed=2) * 2 - 1
    result = gradient_statistics(model, images, ALL_STATISTICS, chunk_size=3)
    assert_matches_reference(result, naive_gradient_stats(model, images), ALL_STATISTICS)


def test_random_models_and_given_labels():
    for seed in range(3):
        torch.manual_seed(seed)
        channels = [int(c) for c in torch.randint(2, 6, (2,))]
        model = nn.Sequential(nn.Conv2d(1, channels[0], 3, stride=int(torch.randint(1, 3, ()))), nn.Tanh(),
                              nn.Conv2d(channels[0], channels[1], 2), nn.Flatten(), nn.LazyLinear(6))
        images = random_images(4, (1, 9, 9), seed=seed)
        model(images)  # materialise the lazy layer
        labels = torch.randint(0, 6, (4,))
        result = gradient_statistics(model, images, ALL_STATISTICS, labels=labels)
        assert_matches_reference(result, naive_gradient_stats(model, images, labels), ALL_STATISTICS)


def test_chunk_size_does_not_change_values():
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=1)
    images = random_images(9)
    a = gradient_statistics(model, images, chunk_size=2)
    b = gradient_statistics(model, images, chunk_size=64)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-7)


def test_degenerate_inputs_are_finite():
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=0)
    with torch.no_grad():  # scale the output layer so noise saturates the softmax
        model.fc2.weight.mul_(1e4)
    images = torch.cat([torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28), random_images(2)])
    result = gradient_statistics(model, images, ALL_STATISTICS)
    for k, v in result.items():
        assert torch.isfinite(v).all(), k
    # a blank image gives conv1.weight a zero gradient: every statistic is 0 by convention
    for stat in ALL_STATISTICS:
        assert result[f"grad/conv1.weight/{stat}"][0] == 0.0


def test_model_state_is_restored():
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=0).train()
    model.fc1.weight.requires_grad_(False)
    gradient_statistics(model, random_images(2))
    assert model.training and not model.fc1.weight.requires_grad and model.conv1.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_bad_arguments():
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=0)
    images = random_images(2)
    with pytest.raises(GradmetaError, match="unknown gradient statistic 'median'"):
        gradient_statistics(model, images, ("l1", "median"))
    with pytest.raises(GradmetaError, match="labels must be 'predicted'"):
        gradient_statistics(model, images, labels="true")
    with pytest.raises(GradmetaError, match=r"labels must have shape \(2,\)"):
        gradient_statistics(model, images, labels=torch.tensor([1, 2, 3]))
    with pytest.raises(GradmetaError, match="chunk_size must be a positive integer"):
        gradient_statistics(model, images, chunk_size=0)
    with pytest.raises(GradmetaError, match="chunk_size must be a positive integer, got 2.5"):
        gradient_statistics(model, images, chunk_size=2.5)
    with pytest.raises(GradmetaError, match="got ndarray .use torch.from_numpy."):
        gradient_statistics(model, images.numpy())
    with pytest.raises(GradmetaError, match=r"images must be a torch\.Tensor \(N, \.\.\.\), got list"):
        gradient_statistics(model, images.tolist())
    with pytest.raises(GradmetaError, match="floating-point tensor .* got torch.uint8"):
        gradient_statistics(model, (images * 255).to(torch.uint8))
    with pytest.raises(GradmetaError, match="labels must be class indices < 10 .the model's outputs., got 10"):
        gradient_statistics(model, images, labels=torch.tensor([3, 10]))
    with pytest.raises(GradmetaError, match="labels must be class indices >= 0, got -1"):
        gradient_statistics(model, images, labels=torch.tensor([-1, 2]))
    with pytest.raises(GradmetaError, match="labels must be integer class indices, got torch.float32"):
        gradient_statistics(model, images, labels=torch.tensor([1.0, 2.0]))
    with pytest.raises(GradmetaError, match="model must be a torch.nn.Module with parameters"):
        gradient_statistics(nn.Flatten(), images)


@pytest.mark.parametrize("index", [0, 3])
def test_non_finite_images_are_refused_naming_the_first(index):
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=0)
    images = random_images(5)
    images[index, 0, 3, 4] = float("nan")
    images[4, 0, 0, 0] = float("inf")
    with pytest.raises(GradmetaError, match=f"image {index} has non-finite values"):
        gradient_statistics(model, images)


def test_an_empty_batch_gives_empty_columns_with_the_usual_keys():
    model = build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=0)
    full = gradient_statistics(model, random_images(2), ("l2", "max"))
    empty = gradient_statistics(model, random_images(2)[:0], ("l2", "max"))
    assert list(empty) == list(full) and all(v.shape == (0,) and v.dtype == torch.float32 for v in empty.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    model = build_cnn(CNNConfig(), seed=0)
    images = random_images(8)
    cpu = gradient_statistics(model, images)
    gpu = gradient_statistics(model.cuda(), images.cuda())
    for k in cpu:
        torch.testing.assert_close(gpu[k], cpu[k], rtol=1e-3, atol=1e-6)


def test_logits_layer_means_are_exactly_zero():
    """p - onehot(y) sums to 0, so the last layer's weight and bias gradient means are 0 exactly
    (for predicted and for given labels), while the other statistics stay non-trivial."""
    model = build_cnn(CNNConfig(), seed=0)
    images = random_images(5)
    for label in ("predicted", torch.tensor([0, 3, 9, 9, 1])):
        result = gradient_statistics(model, images, PAPER_STATISTICS, labels=label)
        assert torch.equal(result["grad/fc2.weight/mean"], torch.zeros(5))
        assert torch.equal(result["grad/fc2.bias/mean"], torch.zeros(5))
        assert (result["grad/fc2.weight/std"] > 0).all() and (result["grad/fc1.weight/mean"] != 0).all()


def test_labels_are_used_and_the_old_label_keyword_is_gone():
    model = build_cnn(CNNConfig(conv_channels=(2, 3), hidden=8), seed=0)
    images, labels = random_images(4), torch.tensor([1, 0, 7, 2])
    given = gradient_statistics(model, images, ("l2",), labels=labels)
    predicted = gradient_statistics(model, images, ("l2",))
    assert not torch.equal(given["grad/all/l2"], predicted["grad/all/l2"])  # the labels were used
    with pytest.raises(TypeError, match="label"):
        gradient_statistics(model, images, ("l2",), label=labels)


@pytest.mark.parametrize("factory, shape, expected", [
    (lambda: build_cnn(CNNConfig(conv_channels=(4, 8), hidden=32), seed=0), (1, 28, 28), True),
    (ColourNet, (3, 10, 9), True),
    (ViewNet, (2, 6, 6), False),  # view() after a conv needs the standard layout
    (LayoutAssumingNet, (1, 5, 5), False),  # other values in channels-last layout
    (MLP, (12,), False),
])
def test_channels_last_layout_only_where_the_model_accepts_it(factory, shape, expected):
    torch.manual_seed(0)
    model = factory().eval()
    probe = random_images(1, shape)
    with torch.enable_grad():
        plan = plan_layers(model, probe)
        assert plan.channels_last is expected
        assert any(layer.channels_last for layer in plan.layers) is expected
    assert not any(m._forward_hooks for m in model.modules())  # the probe leaves no hook behind
    strides = {n: p.stride() for n, p in model.named_parameters()}
    gradient_statistics(model, random_images(3, shape))
    assert {n: p.stride() for n, p in model.named_parameters()} == strides  # the model is not re-laid out
