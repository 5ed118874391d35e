"""The small models the tests run the engine, the detectors and the library on: one zoo, shared by
every test module (``from model_zoo import ...``; the ``test_models`` fixture of conftest.py names them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class StridedConvNet(nn.Module):
    """Stride, padding, dilation, groups and bias=False, then an in-place ReLU after a conv."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, stride=2, padding=1, bias=False)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=2, dilation=2, groups=2)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.fc(F.adaptive_avg_pool2d(x, 4).flatten(1))


class ColourNet(nn.Module):
    """A 3-channel first layer with a non-square kernel, padding and dilation (the swapped
    formulation: stride 1, few input channels), then a 5-channel conv (the grouped one)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 5, (3, 5), padding=(1, 3), dilation=(2, 1))
        self.conv2 = nn.Conv2d(5, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 3 * 3, 4)

    def forward(self, x):
        x = torch.tanh(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(F.adaptive_max_pool2d(x, 3).flatten(1))


class ViewNet(nn.Module):
    """Flattens a multi-channel conv output with view(), which needs the standard layout."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.shape[0], -1))


class LayoutAssumingNet(nn.Module):
    """Reads a conv output's memory as if it had the standard layout (like a custom kernel that
    ignores strides): a channels-last run would compute other values."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 5 * 5, 4)

    def forward(self, x):
        h = self.conv(x)
        raw = torch.as_strided(h, h.shape, torch.empty(h.shape).stride())
        return self.fc(torch.tanh(raw).flatten(1))


class BatchNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.fc2 = nn.Linear(16, 16, bias=False)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(F.relu(self.fc1(x)))))


class SequenceNet(nn.Module):
    """A Linear over a (N, T, F) input, a layer called twice, and a parameter of the model itself."""

    def __init__(self):
        super().__init__()
        self.token = nn.Linear(5, 7)
        self.shared = nn.Linear(7, 7)
        self.scale = nn.Parameter(torch.tensor([1.5, -0.5, 2.0]))
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        h = torch.tanh(self.token(x)).mean(1)
        h = torch.tanh(self.shared(torch.tanh(self.shared(h))))
        return self.head(h) * self.scale


class TiedNet(nn.Module):
    """Two Linear layers sharing one weight (tied), each with its own bias."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(6, 6)
        self.dec = nn.Linear(6, 6)
        self.dec.weight = self.enc.weight
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.dec(torch.tanh(self.enc(x)))))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


def resnet_like():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), Residual(4),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.GroupNorm(2, 6), nn.ReLU(),
                         nn.Conv2d(6, 6, 3, padding=1), nn.InstanceNorm2d(6, affine=True), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


class TinyTransformer(nn.Module):
    """Patch embedding (Linear on (n, T, p)), LayerNorm, one attention block, an MLP, mean pooling."""

    def __init__(self, patch=7, dim=8):
        super().__init__()
        self.patch = patch
        self.embed = nn.Linear(patch * patch, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp1 = nn.Linear(dim, 2 * dim)
        self.mlp2 = nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, 4)

    def forward(self, x):
        n = len(x)
        p = x.unfold(2, self.patch, self.patch).unfold(3, self.patch, self.patch).reshape(n, -1, self.patch ** 2)
        h = self.embed(p)
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
        h = h + self.proj(att @ v)
        h = h + self.mlp2(torch.relu(self.mlp1(self.norm2(h))))
        return self.head(h.mean(1))


class Conv1d3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 3, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm1d(3)
        self.c3 = nn.Conv3d(1, 2, (2, 3, 3), padding=(0, 1, 1), dilation=(1, 2, 2), groups=1)
        self.fc = nn.Linear(3 * 5 + 2 * 2 * 3 * 3, 4)

    def forward(self, x):
        seq = x[:, :2, 0, :]  # (n, 2, 10)
        vol = x[:, None, :, :5, :5]  # (n, 1, 3, 5, 5)
        return self.fc(torch.cat([self.bn1(self.c1(seq)).flatten(1), self.c3(vol).flatten(1)], 1))


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 5, padding_idx=0)
        self.norm = nn.LayerNorm(5)
        self.fc = nn.Linear(5, 3)

    def forward(self, ids):
        return self.fc(self.norm(self.emb(ids)).mean(1))


class WithGeneric(nn.Module):  # conv + PReLU (generic path) + linear head
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.act = nn.PReLU(3)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Sequential() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.skip(x))


def small_resnet(classes: int = 4) -> nn.Module:
    """A ResNet-style classifier of 3x32x32 images: stem, two residual blocks, pooling, a linear head
    (BatchNorm with non-trivial running statistics, as after training)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), Block(8, 8, 1),
                          Block(8, 12, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, classes))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()
