"""The models the engine benchmark measures, besides the paper's CNN (28x28 grey inputs, 10 classes; the
zoo's ResNet-18 takes 32x32 colour ones)."""

from __future__ import annotations

import math

import torch
from torch import nn

from gradmeta.cnn import build_model, read_architecture
from gradmeta.cnn.model import CNNConfig, build_cnn
from gradmeta.cnn.resnet import BasicBlock
from gradmeta.core.params import ParamReader


class SmallResNet(nn.Module):
    """Stem conv3x3 16 + BN, three residual blocks (16, 32, 64; the last two stride 2), global
    average pooling, a linear head; BatchNorm in eval mode with non-trivial running statistics."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class SmallViT(nn.Module):
    """7x7 patches (16 tokens) embedded by a Linear, one pre-norm transformer block (LayerNorm,
    4-head attention, LayerNorm, MLP 2x), LayerNorm, mean pooling, a linear head (the issue's
    "patch embedding Linear, LayerNorm, one attention block, MLP"; no position table, so every
    parameter is a Linear or a LayerNorm)."""

    def __init__(self, dim: int = 64, heads: int = 4, patch: int = 7):
        super().__init__()
        self.patch, self.heads = patch, heads
        self.embed = nn.Linear(patch * patch, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, p = len(x), self.patch
        tokens = x.unfold(2, p, p).unfold(3, p, p).reshape(n, -1, p * p)
        h = self.embed(tokens)
        q, k, v = self.qkv(self.norm1(h)).reshape(n, -1, 3, self.heads, h.shape[-1] // self.heads).unbind(2)
        att = torch.softmax(torch.einsum("nthd,nshd->nhts", q, k) / q.shape[-1] ** 0.5, dim=-1)
        h = h + self.proj(torch.einsum("nhts,nshd->nthd", att, v).reshape(h.shape))
        h = h + self.mlp(self.norm2(h))
        return self.head(self.norm(h).mean(1))


class TorchViT(nn.Module):
    """A ViT made of torch's own layers: 7x7 patches (16 tokens) embedded by a Linear plus a fixed
    sinusoidal position table (a buffer), two pre-norm ``nn.TransformerEncoderLayer`` blocks (4-head
    ``nn.MultiheadAttention``, GELU MLP 2x, dropout 0.1, inactive in eval), LayerNorm, mean pooling, a
    linear head."""

    def __init__(self, dim: int = 64, heads: int = 4, depth: int = 2, patch: int = 7):
        super().__init__()
        self.patch = patch
        self.embed = nn.Linear(patch * patch, dim)
        tokens = (28 // patch) ** 2
        position = torch.arange(tokens, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(tokens, dim)
        table[:, 0::2], table[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
        self.register_buffer("position", table)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, p = len(x), self.patch
        tokens = x.unfold(2, p, p).unfold(3, p, p).reshape(n, -1, p * p)
        h = self.encoder(self.embed(tokens) + self.position)
        return self.head(self.norm(h).mean(1))


class LearnedViT(TorchViT):
    """:class:`TorchViT` as timm and torchvision write a ViT: a class token (a bare ``nn.Parameter`` (1, 1, D))
    in front of the 16 tokens and a learned position embedding (a bare ``nn.Parameter`` (1, 17, D)) in place
    of the fixed table, the class token's output to the head. The two bare parameters take the plan's
    per-sample copy path (``broadcast``), every other one a layer rule."""

    def __init__(self, dim: int = 64, heads: int = 4, depth: int = 2, patch: int = 7):
        super().__init__(dim, heads, depth, patch)
        del self.position  # the learned embedding replaces the fixed table
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (28 // patch) ** 2 + 1, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, p = len(x), self.patch
        tokens = self.embed(x.unfold(2, p, p).unfold(3, p, p).reshape(n, -1, p * p))
        h = torch.cat([self.cls_token.expand(n, -1, -1), tokens], dim=1) + self.pos_embed
        return self.head(self.norm(self.encoder(h)[:, 0]))


def _randomise_norms(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def build(name: str) -> nn.Module:
    """A seeded model in eval mode: ``default`` (the paper's CNN), ``conv-heavy`` (5x5 convolutions
    without padding, 32 and 64 channels, dense 200), ``resnet``, ``transformer`` (attention written out),
    ``vit`` (torch's ``nn.TransformerEncoderLayer``), ``vit_learned`` (the same with a class token and a
    learned position embedding, bare parameters), ``resnet18_32x32`` (the zoo's CIFAR ResNet-18, 32x32x3)."""
    torch.manual_seed(0)
    if name == "default":
        return build_cnn(CNNConfig(), seed=0).eval()
    if name == "conv-heavy":
        return build_cnn(CNNConfig(conv_channels=(32, 64), kernel_size=5, padding=0, hidden=200), seed=0).eval()
    if name == "resnet":
        return _randomise_norms(SmallResNet()).eval()
    if name == "transformer":
        return SmallViT().eval()
    if name == "vit":
        return TorchViT().eval()
    if name == "vit_learned":
        return LearnedViT().eval()
    if name == "resnet18_32x32":
        return _randomise_norms(build_model(read_architecture(ParamReader(RESNET18, "architecture")), seed=0)).eval()
    raise ValueError(f"unknown model {name!r}")


RESNET18 = {"kind": "resnet18_32x32", "in_channels": 3, "image_size": 32}  # the zoo's, on CIFAR-like inputs
MODELS = ("default", "conv-heavy", "resnet", "transformer", "vit", "vit_learned", "resnet18_32x32")


def input_shape(name: str) -> tuple[int, int, int]:
    """(channels, height, width) of one input of model ``name``."""
    return (3, 32, 32) if name == "resnet18_32x32" else (1, 28, 28)
