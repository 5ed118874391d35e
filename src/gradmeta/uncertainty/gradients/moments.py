"""Moment algebra of per-sample gradients: pure tensor code, no modules, no autograd.

A :class:`Moments` summarises one gradient tensor (or several together) per sample: l1, sum of
squares, extremes, mean and central moments. It is computed from materialised values
(:func:`moments_of`), from never-materialised outer products (:func:`moments_of_outer`), or combined
from several tensors' moments (:func:`stack` + :func:`combine`); :meth:`Moments.statistics` turns it
into the statistics a user asks for.

Statistics (over the entries of one gradient tensor, per sample): ``l1`` (sum |g|), ``l2`` (sqrt of
sum g^2), ``max``, ``min`` (signed), ``mean``, ``std`` (population), ``skew`` and ``kurt`` (excess).
Degenerate cases: the std of one entry is 0; skew and kurt are 0 for a constant tensor (zero
variance up to rounding, e.g. an all-zero gradient). Every value is finite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from gradmeta.core.errors import GradmetaError

PAPER_STATISTICS = ("l1", "l2", "max", "min", "mean", "std")
OPTIONAL_STATISTICS = ("skew", "kurt")
ALL_STATISTICS = PAPER_STATISTICS + OPTIONAL_STATISTICS


def validate_statistics(statistics: Sequence[str]) -> tuple[str, ...]:
    """Check statistic names (a GradmetaError names the bad one); returns them as a tuple."""
    stats = tuple(statistics)
    if not stats:
        raise GradmetaError(f"statistics must name at least one of {', '.join(ALL_STATISTICS)}")
    for s in stats:
        if s not in ALL_STATISTICS:
            raise GradmetaError(f"unknown gradient statistic {s!r}, expected one of {', '.join(ALL_STATISTICS)}")
    if len(set(stats)) != len(stats):
        raise GradmetaError(f"statistics are listed twice: {list(stats)}")
    return stats


@dataclass(frozen=True)
class Needs:
    """Which per-sample quantities the requested statistics need (the rest is never computed)."""

    l1: bool
    sumsq: bool
    extremes: bool
    mean: bool
    higher: bool

    @classmethod
    def of(cls, statistics: Sequence[str]) -> Needs:
        s = set(statistics)
        higher = bool(s & set(OPTIONAL_STATISTICS))
        return cls(l1="l1" in s, sumsq=bool(s & {"l2", "std"}) or higher,
                   extremes=bool(s & {"max", "min"}) or higher, mean=bool(s & {"mean", "std"}) or higher,
                   higher=higher)


FIELDS = ("l1", "sumsq", "max", "min", "mean", "m2", "m3", "m4")


@dataclass
class Moments:
    """Per-sample summary of one gradient tensor (or of several together), each field (n,) or None.

    ``count`` is the number of entries summarised; ``mean``, ``m2``, ``m3``, ``m4`` are float64
    central moments (m2 is the population variance); a field is None when no requested statistic
    needs it. Fields may also be (P, n) for P tensors at once (see :func:`stack`).
    """

    count: int
    l1: torch.Tensor | None = None
    sumsq: torch.Tensor | None = None
    max: torch.Tensor | None = None
    min: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    m3: torch.Tensor | None = None
    m4: torch.Tensor | None = None

    def statistics(self, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """The requested statistics (float64, shaped like the fields), with the degenerate-case
        conventions of the module docstring."""
        return {name: _STATISTIC[name](self) for name in names}


def _shape_moment(m: Moments, name: str) -> torch.Tensor:
    """Skewness or excess kurtosis; 0 where the tensor is constant (no shape to measure)."""
    var = m.m2.clamp_min(0.0)
    scale = torch.maximum(m.max.abs(), m.min.abs()).double()
    flat = var <= (1e-12 * scale) ** 2  # constant tensor up to rounding
    safe = torch.where(flat, torch.ones_like(var), var)
    value = m.m3 / safe.pow(1.5) if name == "skew" else m.m4 / safe.pow(2) - 3.0
    return torch.where(flat, 0.0, value)


_STATISTIC: dict[str, Callable[[Moments], torch.Tensor]] = {
    "l1": lambda m: m.l1.double(),
    "l2": lambda m: m.sumsq.double().clamp_min(0.0).sqrt(),
    "max": lambda m: m.max.double(),
    "min": lambda m: m.min.double(),
    "mean": lambda m: m.mean,
    "std": lambda m: m.m2.clamp_min(0.0).sqrt(),
    "skew": lambda m: _shape_moment(m, "skew"),
    "kurt": lambda m: _shape_moment(m, "kurt"),
}

RAW_ROWS = ("l2", "max", "min", "sum", "l1")  # per-sample float32 reductions of materialised values


def raw_sums_into(values: torch.Tensor, needs: Needs, out: torch.Tensor, scratch: bool = False) -> None:
    """The float32 per-sample reductions of ``values`` (m, K) that ``needs`` asks for, written into
    the rows of ``out`` (len(RAW_ROWS), m) (pairwise sums, exact to ~1e-7 relative).

    ``scratch=True`` lets the last pass overwrite ``values`` (a temporary the caller owns).
    """
    if needs.sumsq:
        torch.linalg.vector_norm(values, 2, dim=1, out=out[0])
    if needs.extremes:
        torch.amax(values, 1, out=out[1])
        torch.amin(values, 1, out=out[2])
    if needs.mean:
        torch.sum(values, 1, out=out[3])
    if needs.l1:  # abs + sum: several times faster than vector_norm(ord=1) on the CPU
        torch.sum(values.abs_() if scratch else values.abs(), 1, out=out[4])


def moments_from_raw(raw: torch.Tensor, count: int, needs: Needs) -> Moments:
    """Moments (no skew/kurt) from the rows written by ``raw_sums_into``; derived fields in float64."""
    m = Moments(count)
    if needs.sumsq:
        l2 = raw[0].double()
        m.sumsq = l2 * l2
    if needs.extremes:
        m.max, m.min = raw[1], raw[2]
    if needs.mean:
        m.mean = raw[3].double() / count
        if needs.sumsq:
            m.m2 = (m.sumsq / count - m.mean * m.mean).clamp_min(0.0)
    if needs.l1:
        m.l1 = raw[4].double()
    return m


def moments_of(values: torch.Tensor, needs: Needs, scratch: bool = False) -> Moments:
    """Moments of materialised per-sample values (n, K), one pass per needed quantity.

    Sums run in float32 and derived quantities in float64; for skew/kurt the central moments are
    accumulated in float64. ``scratch`` as in ``raw_sums_into``.
    """
    n, k = values.shape
    raw = values.new_empty(len(RAW_ROWS), n)
    raw_sums_into(values, needs, raw, scratch=scratch and not needs.higher)
    m = moments_from_raw(raw, k, needs)
    if needs.higher:
        d = values.double() - m.mean[:, None]
        d2 = d * d
        m.m2, m.m3, m.m4 = d2.mean(1), (d2 * d).mean(1), (d2 * d2).mean(1)
    return m


def moments_of_outer(g: torch.Tensor, a: torch.Tensor, needs: Needs) -> Moments:
    """Moments of the per-sample outer products g[n] (x) a[n] (entries g_i a_j), never materialised.

    g (n, out), a (n, in). Raw power sums factorise (sum (g_i a_j)^p = sum g_i^p * sum a_j^p), so
    does the l1 sum; max/min are among the four products of the extremes of g and a. Factor sums
    run in float32 and their products in float64; the third and fourth power sums (skew, kurt) are
    accumulated in float64.
    """
    count = g.shape[1] * a.shape[1]
    m = Moments(count)
    if needs.l1:
        m.l1 = g.abs().sum(1).double() * a.abs().sum(1).double()
    if needs.extremes:
        gmax, gmin, amax, amin = g.amax(1), g.amin(1), a.amax(1), a.amin(1)
        corners = torch.stack([gmax * amax, gmax * amin, gmin * amax, gmin * amin], dim=1)
        m.max, m.min = corners.amax(1), corners.amin(1)
    if needs.sumsq or needs.mean:
        g2 = torch.linalg.vector_norm(g, 2, dim=1).double() ** 2
        a2 = torch.linalg.vector_norm(a, 2, dim=1).double() ** 2
        s2 = g2 * a2
        if needs.sumsq:
            m.sumsq = s2
        if needs.mean:
            _outer_central_moments(m, g, a, s2 / count, needs)
    return m


def _outer_central_moments(m: Moments, g: torch.Tensor, a: torch.Tensor, e2: torch.Tensor, needs: Needs) -> None:
    """Mean and central moments of the outer products from raw power sums (``e2``: mean of squares)."""
    count = m.count
    mean = g.sum(1).double() * a.sum(1).double() / count
    m.mean = mean
    if needs.sumsq:
        m.m2 = (e2 - mean * mean).clamp_min(0.0)
    if needs.higher:
        gd, ad = g.double(), a.double()
        gd2, ad2 = gd * gd, ad * ad
        e3 = (gd2 * gd).sum(1) * (ad2 * ad).sum(1) / count
        e4 = (gd2 * gd2).sum(1) * (ad2 * ad2).sum(1) / count
        m.m3 = e3 - 3 * mean * e2 + 2 * mean**3
        m.m4 = e4 - 4 * mean * e3 + 6 * mean**2 * e2 - 3 * mean**4


def stack(parts: Sequence[Moments]) -> Moments:
    """Several tensors' moments as one Moments whose fields are (len(parts), n): statistics and
    ``combine`` then run once for all of them instead of once per tensor."""
    fields = {f: None if getattr(parts[0], f) is None else torch.stack([getattr(p, f) for p in parts])
              for f in FIELDS}
    return Moments(sum(p.count for p in parts), **fields)


def concat_samples(parts: Sequence[Moments]) -> Moments:
    """Join moments computed on consecutive sample slices (same tensor, different samples)."""
    if len(parts) == 1:
        return parts[0]
    joined = {f: None if getattr(parts[0], f) is None else torch.cat([getattr(p, f) for p in parts]) for f in FIELDS}
    return Moments(parts[0].count, **joined)


def combine(stacked: Moments, counts: Sequence[int]) -> Moments:
    """Moments of the concatenation of several tensors, from their ``stack`` and entry counts
    (pairwise-stable central moments)."""
    s = stacked
    out = Moments(int(sum(counts)))
    if s.l1 is not None:
        out.l1 = s.l1.sum(0)
    if s.sumsq is not None:
        out.sumsq = s.sumsq.sum(0)
    if s.max is not None:
        out.max, out.min = s.max.amax(0), s.min.amin(0)
    if s.mean is not None:
        weight = torch.tensor(counts, dtype=torch.float64, device=s.mean.device)[:, None] / out.count
        out.mean = (weight * s.mean).sum(0)
        if s.m2 is not None:
            _combine_central(out, s, weight)
    return out


def _combine_central(out: Moments, s: Moments, weight: torch.Tensor) -> None:
    """Central moments of the concatenation (``out.mean`` set) from the parts' moments."""
    dev = s.mean - out.mean
    dev2 = dev * dev
    out.m2 = (weight * (s.m2 + dev2)).sum(0)
    if s.m3 is not None:
        out.m3 = (weight * (s.m3 + 3 * dev * s.m2 + dev2 * dev)).sum(0)
        out.m4 = (weight * (s.m4 + 4 * dev * s.m3 + 6 * dev2 * s.m2 + dev2 * dev2)).sum(0)
