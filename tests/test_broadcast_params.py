"""Bare parameters shared by broadcasting (a ViT's position embedding and class token) take the per-sample
copy path of the plan, exactly: every parameter of such a ViT is on a rule (none generic), and the
statistics equal the naive per-sample autograd loop's. A parameter the model uses in another way keeps the
generic path, also exact."""

from __future__ import annotations

import torch
from reference import assert_matches_reference, naive_gradient_stats
from torch import nn

from gradmeta.uncertainty.gradients import ALL_STATISTICS, gradient_statistics, plan_layers


class LearnedViT(nn.Module):
    """4x4 patches of 8x8 images (4 tokens) embedded by a Linear, a class token (1, 1, D) in front, a learned
    position embedding (1, 5, D) added, one pre-norm ``nn.TransformerEncoderLayer``, the class token's output
    to a linear head. ``repeat``: the class token is tiled with ``repeat`` over a batch-size it reads from
    the input, so a per-sample copy of it would not fit (the generic path)."""

    def __init__(self, dim: int = 8, repeat: bool = False):
        super().__init__()
        self.embed = nn.Linear(16, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 5, dim) * 0.5)
        self.block = nn.TransformerEncoderLayer(dim, 2, 16, dropout=0.0, batch_first=True, norm_first=True)
        self.head = nn.Linear(dim, 3)
        self.repeat = repeat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        tokens = self.embed(x.unfold(2, 4, 4).unfold(3, 4, 4).reshape(n, 4, 16))
        cls = self.cls_token.repeat(n, 1, 1) if self.repeat else self.cls_token.expand(n, -1, -1)
        h = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.block(h)[:, 0])


def test_a_vits_position_embedding_and_class_token_are_on_a_rule_and_exact():
    torch.manual_seed(0)
    model = LearnedViT().double().eval()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    paths = plan_layers(model, x[:1]).paths()
    assert paths["cls_token"] == paths["pos_embed"] == "broadcast"
    assert "generic" not in paths.values(), paths
    got = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=4)
    assert_matches_reference(got, naive_gradient_stats(model, x), ALL_STATISTICS)


def test_a_parameter_the_model_repeats_keeps_the_generic_path_and_stays_exact():
    torch.manual_seed(1)
    model = LearnedViT(repeat=True).double().eval()
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    paths = plan_layers(model, x[:1]).paths()
    assert paths["cls_token"] == "generic" and paths["pos_embed"] == "broadcast"
    got = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=2)
    assert_matches_reference(got, naive_gradient_stats(model, x), ALL_STATISTICS)
