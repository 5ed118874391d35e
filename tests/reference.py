"""Independent references: a naive per-sample autograd loop and plain statistics in float64."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def plain_stats(values: torch.Tensor) -> dict[str, float]:
    v = values.detach().double().flatten()
    mean = v.mean()
    std = v.std(unbiased=False) if v.numel() > 1 else torch.tensor(0.0, dtype=torch.float64)
    d = v - mean
    scale = v.abs().max()
    flat = std <= 1e-12 * scale or std == 0
    skew = 0.0 if flat else ((d**3).mean() / std**3).item()
    kurt = 0.0 if flat else ((d**4).mean() / std**4 - 3).item()
    return {"l1": v.abs().sum().item(), "l2": v.norm().item(), "max": v.max().item(), "min": v.min().item(),
            "mean": mean.item(), "std": std.item(), "skew": skew, "kurt": kurt}


def naive_gradient_stats(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                         loss=None):
    """Per image: forward, backward of CE against the prediction (or ``labels``), or of
    ``loss(logits)`` when given, then the statistics of p.grad."""
    model.eval()
    rows = []
    for i in range(len(images)):
        model.zero_grad(set_to_none=True)
        logits = model(images[i: i + 1])
        y = logits.argmax(1) if labels is None else labels[i: i + 1]
        (F.cross_entropy(logits, y) if loss is None else loss(logits)).backward()
        row, grads = {}, []
        for name, p in model.named_parameters():
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            grads.append(g.flatten())
            for stat, value in plain_stats(g).items():
                row[f"grad/{name}/{stat}"] = value
        for stat, value in plain_stats(torch.cat(grads)).items():
            row[f"grad/all/{stat}"] = value
        rows.append(row)
    return rows


def assert_matches_reference(result: dict[str, torch.Tensor], reference: list[dict[str, float]],
                             statistics, rtol: float = 1e-4) -> None:
    """Every statistic within rtol: relative to |ref| (l1, l2, max, min, std), to the tensor's std
    (mean), to max(1, |ref|) (skew, kurt). A tensor whose whole gradient is rounding noise (l2 below
    1e-9 of the sample's gradient over all parameters, e.g. a bias before a normalisation of a
    constant map) is compared with that absolute floor, and its skew and kurt (noise) are not."""
    for i, ref in enumerate(reference):
        floor = 1e-9 * ref.get("grad/all/l2", 0.0)
        for key, value in ref.items():
            stat = key.rsplit("/", 1)[-1]
            if stat not in statistics:
                continue
            tensor = key.rsplit("/", 1)[0]
            noise = ref[tensor + "/l2"] <= floor
            if noise and stat in ("skew", "kurt"):
                continue
            got = result[key][i].item()
            if stat == "mean":
                scale = ref[tensor + "/std"]
            elif stat in ("skew", "kurt"):
                scale = max(1.0, abs(value))
            else:
                scale = abs(value)
            assert abs(got - value) <= rtol * scale + 1e-12 + floor, f"sample {i} {key}: got {got}, reference {value}"
