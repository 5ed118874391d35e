"""The attention rule (``nn.MultiheadAttention``, and so torch's transformer layers) against the naive
per-sample loop in float64, every statistic, over the ways users build and call attention; and the
plan's finding of where the samples lie (sequence-first layers)."""

import pytest
import torch
from model_zoo import AttentionNet, DecoderNet, EncoderNet, OutProjReused
from reference import assert_matches_reference, naive_gradient_stats

from gradmeta.uncertainty.gradients import ALL_STATISTICS, gradient_statistics, plan_layers


def token_images(n=7, seed=1):
    """(n, 1, 6, 4) images: each row a token of 4 pixels; sample 0 blank, sample 1 has blank tokens."""
    x = torch.rand(n, 1, 6, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[0] = 0.0
    x[1, 0, 3:] = 0.0
    return x


def check(model, x=None):
    """Every statistic of every parameter against the naive loop, with no parameter on the generic path."""
    model = model.double().eval()
    x = token_images() if x is None else x
    paths = plan_layers(model, x[:1]).paths()
    assert "generic" not in paths.values(), paths
    result = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=3)
    assert_matches_reference(result, naive_gradient_stats(model, x), ALL_STATISTICS)
    return paths


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_encoder_layers_are_exact_with_no_generic_parameter(batch_first, norm_first):
    torch.manual_seed(0)
    paths = check(EncoderNet(batch_first=batch_first, norm_first=norm_first))
    assert paths["blocks.0.self_attn.in_proj_weight"] == paths["blocks.1.self_attn.out_proj.weight"] == "attention"
    assert paths["blocks.0.linear1.weight"] == "linear" and paths["blocks.1.norm2.bias"] == "layernorm"


@pytest.mark.parametrize("batch_first", [True, False])
def test_causal_hint_and_key_padding_in_encoder_layers(batch_first):
    torch.manual_seed(1)
    check(EncoderNet(batch_first=batch_first, causal=True))
    check(EncoderNet(batch_first=batch_first, causal=True, padding=True))


@pytest.mark.parametrize("options", [
    {"mha": {"batch_first": True}},
    {"mha": {}},
    {"mha": {"bias": False, "batch_first": True}},
    {"mha": {"add_bias_kv": True}},
    {"mha": {"add_bias_kv": True, "add_zero_attn": True, "batch_first": True}, "padding": True, "mask": "float"},
    {"mha": {"kdim": 5, "vdim": 3, "batch_first": True}},
    {"mha": {"kdim": 5, "vdim": 3}, "mask": "per-sample", "padding": True},
    {"mha": {"batch_first": True}, "cross": True, "mask": "bool"},
    {"mha": {}, "mask": "per-sample"},
    {"mha": {"batch_first": True, "dropout": 0.3}, "weights": "average", "padding": True},
    {"mha": {"add_zero_attn": True}, "weights": "heads", "mask": "bool"},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in sorted({**o["mha"], **o}.items()) if k != "mha") or "plain")
def test_multihead_attention_configurations(options):
    torch.manual_seed(2)
    paths = check(AttentionNet(**options))
    owned = [name for name in paths if name.startswith("attention.")]
    assert {paths[name] for name in owned} == {"attention"}
    mha = options["mha"]
    expected = {"in_proj_weight"} if "kdim" not in mha else {"q_proj_weight", "k_proj_weight", "v_proj_weight"}
    expected |= {"in_proj_bias", "out_proj.bias"} if mha.get("bias", True) else set()
    expected |= {"bias_k", "bias_v"} if mha.get("add_bias_kv") else set()
    assert {name.removeprefix("attention.") for name in owned} == expected | {"out_proj.weight"}


def test_decoder_layer_with_cross_attention_to_a_memory():
    torch.manual_seed(3)
    paths = check(DecoderNet())
    assert paths["decoder.multihead_attn.in_proj_weight"] == "attention"


def test_out_proj_called_on_its_own_sends_the_attention_to_the_generic_path():
    torch.manual_seed(4)
    model = OutProjReused().double().eval()
    x = token_images()
    paths = plan_layers(model, x[:1]).paths()
    assert paths["attention.in_proj_weight"] == paths["attention.out_proj.weight"] == "generic"
    assert paths["embed.weight"] == "linear"
    result = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=4)
    assert_matches_reference(result, naive_gradient_stats(model, x), ALL_STATISTICS)


class FoldedTokens(torch.nn.Module):
    """A Linear on (n * T, in): the samples folded into the first dimension, so no rule applies to it."""

    def __init__(self):
        super().__init__()
        self.token = torch.nn.Linear(4, 5)
        self.head = torch.nn.Linear(5, 3)

    def forward(self, x):
        n = len(x)
        return self.head(torch.tanh(self.token(x.reshape(-1, 4))).reshape(n, -1, 5).mean(1))


def test_samples_folded_into_another_dimension_go_to_the_generic_path():
    model = FoldedTokens().double().eval()
    x = token_images()
    paths = plan_layers(model, x[:1]).paths()
    assert paths["token.weight"] == "generic" and paths["head.weight"] == "linear"
    result = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=4)
    assert_matches_reference(result, naive_gradient_stats(model, x), ALL_STATISTICS)
