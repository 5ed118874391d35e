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


class EncoderNet(nn.Module):
    """Tokens of 4 pixels embedded by a Linear, two ``nn.TransformerEncoderLayer`` blocks (torch's own
    MultiheadAttention inside), mean pooling, a linear head; ``batch_first`` either way, ``norm_first``
    either way, optionally a causal mask with the ``is_causal`` hint and a key padding mask from the data."""

    def __init__(self, batch_first=True, norm_first=False, causal=False, padding=False, dim=8, classes=3):
        super().__init__()
        self.batch_first, self.causal, self.padding = batch_first, causal, padding
        self.embed = nn.Linear(4, dim)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(dim, 2, 2 * dim, dropout=0.1, activation="gelu",
                                                               batch_first=batch_first, norm_first=norm_first)
                                    for _ in range(2))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        tokens = x.reshape(len(x), -1, 4)
        h = self.embed(tokens)
        mask = nn.Transformer.generate_square_subsequent_mask(h.shape[1], dtype=h.dtype) if self.causal else None
        padding = None
        if self.padding:  # a blank token is padding; the first never is
            padding = tokens.abs().sum(-1) == 0
            padding[:, 0] = False
        if not self.batch_first:
            h = h.transpose(0, 1)
        for block in self.blocks:
            h = block(h, src_mask=mask, src_key_padding_mask=padding, is_causal=self.causal)
        if not self.batch_first:
            h = h.transpose(0, 1)
        return self.head(h.mean(1))


class AttentionNet(nn.Module):
    """One ``nn.MultiheadAttention`` called the ways users call it: ``mha`` its constructor's options
    (bias, add_bias_kv, add_zero_attn, kdim/vdim, batch_first); ``cross``: keys and values from other
    tokens than the queries (with kdim/vdim their own widths); ``mask``: None, ``"bool"`` (2-D
    causal), ``"float"`` (2-D, a fixed table) or ``"per-sample"`` (3-D, one per sample and head, from
    the data); ``padding``: a key padding mask from the data; ``weights``: the returned attention
    weights feed the head too (``"average"`` or ``"heads"``), else they are not asked for."""

    def __init__(self, mha=None, cross=False, mask=None, padding=False, weights=None, dim=8, heads=2, classes=3):
        super().__init__()
        mha = dict(mha or {})
        self.batch_first = mha.get("batch_first", False)
        self.cross, self.mask, self.padding, self.weights, self.heads = cross or "kdim" in mha, mask, padding, weights, heads
        self.embed = nn.Linear(4, dim)
        if self.cross:
            self.embed_k = nn.Linear(4, mha.get("kdim", dim))
            self.embed_v = nn.Linear(4, mha.get("vdim", dim))
        self.attention = nn.MultiheadAttention(dim, heads, **mha)
        self.head = nn.Linear(dim, classes)
        queries, keys = 6, 5 if self.cross else 6
        keys += int(mha.get("add_bias_kv", False)) + int(mha.get("add_zero_attn", False))
        per_head = heads if weights == "heads" else 1
        self.weights_head = nn.Linear(per_head * queries * keys, classes) if weights else None
        self.register_buffer("table", torch.randn(6, 5 if self.cross else 6, generator=torch.Generator().manual_seed(3)))

    def forward(self, x):
        tokens = x.reshape(len(x), -1, 4)  # (n, 6, 4)
        sources = tokens[:, 1:] if self.cross else tokens
        q = self.embed(tokens)
        k, v = (self.embed_k(sources), self.embed_v(sources)) if self.cross else (q, q)
        tgt, src = q.shape[1], k.shape[1]
        kwargs = {}
        if self.mask == "bool":
            kwargs["attn_mask"] = torch.ones(tgt, src, dtype=torch.bool).triu(1)
        elif self.mask == "float":
            kwargs["attn_mask"] = self.table.to(q.dtype)
        elif self.mask == "per-sample":
            scores = tokens[:, :, :1] - sources[:, :, :1].transpose(1, 2)  # (n, tgt, src)
            kwargs["attn_mask"] = (-scores.abs()).repeat_interleave(self.heads, 0)
        if self.padding:
            padding = sources.abs().sum(-1) < 1.0
            padding[:, 0] = False
            kwargs["key_padding_mask"] = padding
        if self.weights:
            kwargs.update(need_weights=True, average_attn_weights=self.weights == "average")
        else:
            kwargs["need_weights"] = False
        if not self.batch_first:
            q, k, v = (t.transpose(0, 1) for t in (q, k, v))
            if not self.cross:
                k = v = q
        out, attn = self.attention(q, k, v, **kwargs)
        if not self.batch_first:
            out = out.transpose(0, 1)
        logits = self.head(out.mean(1))
        return logits if self.weights_head is None else logits + self.weights_head(attn.flatten(1))


class DecoderNet(nn.Module):
    """An ``nn.TransformerDecoderLayer`` (self-attention with a causal mask, cross-attention to a memory
    made of other tokens), sequence first; mean pooling, a linear head."""

    def __init__(self, dim=8, classes=3):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.memory = nn.Linear(4, dim)
        self.decoder = nn.TransformerDecoderLayer(dim, 2, 2 * dim, dropout=0.0)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        tokens = x.reshape(len(x), -1, 4).transpose(0, 1)  # (T, n, 4)
        h, memory = self.embed(tokens), self.memory(tokens[1:])
        mask = nn.Transformer.generate_square_subsequent_mask(h.shape[0], dtype=h.dtype)
        return self.head(self.decoder(h, memory, tgt_mask=mask, tgt_is_causal=True).mean(0))


class OutProjReused(nn.Module):
    """Calls the attention's ``out_proj`` on its own as well: the attention rule must not claim it."""

    def __init__(self, dim=8):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.attention = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, 3)

    def forward(self, x):
        h = self.embed(x.reshape(len(x), -1, 4))
        out = self.attention(h, h, h, need_weights=False)[0]
        return self.head((out + self.attention.out_proj(h)).mean(1))
