"""Rule for ``nn.MultiheadAttention`` (and so for ``nn.TransformerEncoderLayer`` / ``DecoderLayer``).

The module projects query, key and value by one packed ``in_proj_weight`` (3E, E) (or by
``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim`` differ from E),
attends per head, and projects the context c by ``out_proj``, which it calls through
``F.linear``: ``out_proj`` is never called as a module, so this rule owns its parameters.

Per sample k, with q_t = W_q x_t + b_q (and k, v alike) at every position t:
- ``out_proj.weight``: sum_t g_t (x) c_t and ``out_proj.bias``: sum_t g_t, g the gradient of the
  module's output (in the sequence-Linear machinery, :func:`.linear.sequence_linear_moments`);
- ``in_proj_weight``: the rows of W_q, W_k, W_v get sum_t dq_t (x) x^q_t, sum_s dk_s (x) x^k_s,
  sum_s dv_s (x) x^v_s, where dq, dk, dv are the gradients of the projections; with one input for
  all three (self-attention) that is one batched product of [dq dk dv] with x;
  ``in_proj_bias``: [sum dq, sum dk, sum dv]; ``bias_k``/``bias_v`` (``add_bias_kv``): the
  gradient of the appended key/value position.

dq, dk, dv come from a local recomputation of the attention from the captured inputs (masks,
``add_bias_kv``, ``add_zero_attn``, ``is_causal`` as ``F.multi_head_attention_forward`` applies
them, dropout off as in eval mode), differentiated with the gradients of the module's outputs
(the attention output through ``out_proj``, and the returned attention weights when the model
uses them). Samples do not interact (the masks are per sample or shared), so one batched backward
gives every sample's gradients exactly.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from gradmeta.uncertainty.gradients.moments import Moments, Needs, combine, moments_of, stack
from gradmeta.uncertainty.gradients.rules.linear import sequence_linear_moments
from gradmeta.uncertainty.gradients.rules.registry import Call, register_rule


def _sample_dims(module: nn.MultiheadAttention, ndim: int) -> tuple[int, ...]:
    """Batched inputs only: (N, L, E) with ``batch_first``, else (L, N, E)."""
    return ((0,) if module.batch_first else (1,)) if ndim == 3 else ()


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A mask as the additive float mask attention applies (True = masked = -inf)."""
    if mask is None or mask.is_floating_point():
        return mask
    return torch.zeros_like(mask, dtype=dtype).masked_fill_(mask, float("-inf"))


def _attention_mask(module: nn.MultiheadAttention, arguments: dict, n: int, tgt: int, src: int,
                    dtype: torch.dtype) -> torch.Tensor | None:
    """The additive mask (n or 1, heads or 1, tgt, src') that the module's forward applies, src' the
    source length after ``add_bias_kv`` and ``add_zero_attn`` (their extra columns are not masked)."""
    heads = module.num_heads
    attn_mask = arguments["attn_mask"]
    padding = _additive(arguments["key_padding_mask"], dtype)
    if arguments["is_causal"] and padding is None and not arguments["need_weights"]:
        # F.multi_head_attention_forward then drops attn_mask and lets attention apply the causal mask
        causal = torch.ones(tgt, src, dtype=torch.bool, device=arguments["query"].device).tril()
        attn_mask = ~causal
    mask = _additive(attn_mask, dtype)
    if mask is not None:
        mask = mask.reshape(1, 1, tgt, src) if mask.dim() == 2 else mask.reshape(n, heads, tgt, src)
    if padding is not None:
        padding = padding.reshape(n, 1, 1, src)
        mask = padding if mask is None else mask + padding
    extra = int(module.bias_k is not None) + int(module.add_zero_attn)
    return F.pad(mask, (0, extra)) if mask is not None and extra else mask


def _projection_weights(module: nn.MultiheadAttention) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """[W_q, W_k, W_v] and [b_q, b_k, b_v] (None without bias)."""
    if module._qkv_same_embed_dim:
        weights = list(module.in_proj_weight.chunk(3))
    else:
        weights = [module.q_proj_weight, module.k_proj_weight, module.v_proj_weight]
    biases = [None] * 3 if module.in_proj_bias is None else list(module.in_proj_bias.chunk(3))
    return weights, biases


def _detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def _samples_first(t: torch.Tensor, batch_first: bool) -> torch.Tensor:
    return t if batch_first else t.transpose(0, 1)


def _recomputed_gradients(module: nn.MultiheadAttention, arguments: dict, query: torch.Tensor, key: torch.Tensor,
                          value: torch.Tensor, packed: bool, grad_out: torch.Tensor, grad_weights: torch.Tensor | None,
                          ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """The attention recomputed from its inputs (samples first) and differentiated with the gradients of its
    outputs: the gradients of the projections ([q k v] packed (n, tgt, 3E), or q, k, v apart), of the appended
    ``bias_k``/``bias_v`` positions (n, 1, E) each, and the context (n, tgt, E) that ``out_proj`` receives."""
    n, tgt, embed = query.shape
    heads, head_dim = module.num_heads, embed // module.num_heads
    with torch.enable_grad():
        if packed:
            projected = [F.linear(query, module.in_proj_weight.detach(), _detached(module.in_proj_bias))]
            q, k, v = projected[0].requires_grad_().chunk(3, -1)
        else:
            weights, biases = _projection_weights(module)
            projected = [F.linear(x, w.detach(), _detached(b)).requires_grad_()
                         for x, w, b in zip((query, key, value), weights, biases)]
            q, k, v = projected
        appended = []
        if module.bias_k is not None:
            appended = [b.detach().reshape(1, 1, embed).expand(n, 1, embed).clone().requires_grad_()
                        for b in (module.bias_k, module.bias_v)]
            k, v = torch.cat([k, appended[0]], 1), torch.cat([v, appended[1]], 1)
        if module.add_zero_attn:
            k, v = (F.pad(t, (0, 0, 0, 1)) for t in (k, v))
        mask = _attention_mask(module, arguments, n, tgt, key.shape[1], query.dtype)
        qh, kh, vh = (t.reshape(n, -1, heads, head_dim).transpose(1, 2) for t in (q, k, v))
        grads = [(grad_out @ module.out_proj.weight.detach()).reshape(n, tgt, heads, head_dim).transpose(1, 2)]
        if grad_weights is not None and arguments["need_weights"]:  # the model uses the attention weights
            scores = (qh * head_dim ** -0.5) @ kh.transpose(-2, -1)
            attention = torch.softmax(scores if mask is None else scores + mask, dim=-1)
            targets = [attention @ vh, attention.mean(1) if arguments["average_attn_weights"] else attention]
            grads.append(grad_weights)
        else:
            targets = [F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)]
        leaves = projected + appended
        found = torch.autograd.grad(targets, leaves, grads, allow_unused=True)
    d_leaves = [torch.zeros_like(t) if d is None else d for t, d in zip(leaves, found)]
    context = targets[0].detach().transpose(1, 2).reshape(n, tgt, embed)
    return d_leaves[: len(projected)], d_leaves[len(projected):], context


@register_rule(nn.MultiheadAttention, name="attention", sample_dims=_sample_dims, whole_call=True,
               owns_submodules=True)
def attention_moments(module: nn.MultiheadAttention, call: Call, output_grads: tuple, needs: Needs) -> dict[str, Moments]:
    """Moments of the per-sample gradients of every parameter of a MultiheadAttention, its
    ``out_proj`` included (keys as ``module.named_parameters()``)."""
    arguments = inspect.signature(module.forward).bind(*call.args, **call.kwargs)
    arguments.apply_defaults()
    arguments = arguments.arguments
    query, key, value = arguments["query"], arguments["key"], arguments["value"]
    packed = module._qkv_same_embed_dim and query is key and key is value  # self-attention: one projection
    query, key, value = (_samples_first(t, module.batch_first) for t in (query, key, value))
    grad_out, grad_weights = output_grads[0], output_grads[1] if len(output_grads) > 1 else None
    grad_out = _samples_first(grad_out, module.batch_first)
    n, _, embed = query.shape
    d_projected, d_appended, context = _recomputed_gradients(module, arguments, query, key, value, packed,
                                                             grad_out, grad_weights)

    out: dict[str, Moments] = {}
    if packed:
        bias_grads = d_projected[0].sum(1)
        out["in_proj_weight"] = sequence_linear_moments(query, d_projected[0], needs)
    else:
        bias_grads = torch.cat([d.sum(1) for d in d_projected], -1)
        parts = [sequence_linear_moments(x, d, needs) for x, d in zip((query, key, value), d_projected)]
        if module._qkv_same_embed_dim:
            out["in_proj_weight"] = combine(stack(parts), [p.count for p in parts])
        else:
            out.update(zip(("q_proj_weight", "k_proj_weight", "v_proj_weight"), parts))
    if module.in_proj_bias is not None:
        out["in_proj_bias"] = moments_of(bias_grads, needs)
    if module.bias_k is not None:
        out["bias_k"], out["bias_v"] = (moments_of(d.reshape(n, embed), needs) for d in d_appended)
    out["out_proj.weight"] = sequence_linear_moments(context, grad_out, needs)
    if module.out_proj.bias is not None:
        out["out_proj.bias"] = moments_of(grad_out.sum(1), needs)
    return out
