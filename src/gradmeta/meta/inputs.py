"""What the meta stage compares: single metrics (one column each) and named feature sets."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from gradmeta.core.errors import GradmetaError
from gradmeta.meta.classifiers import PROBABILITIES, REL_U, THRESHOLD
from gradmeta.meta.config import MetaConfig


def expand_patterns(patterns: tuple[str, ...], columns: list[str], where: str,
                    params_file: str = "params.yaml") -> list[str]:
    """Columns matching any pattern (fnmatch), in table order; a pattern matching nothing is an
    error naming ``params_file`` and the parameter ``where``."""
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise GradmetaError(f"{params_file}: {where}: {pattern!r} matches no feature column")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in columns if c in chosen]


@dataclass
class Inputs:
    """What is compared: single metrics (one column each), named feature sets (column lists), and the
    class probabilities ``prob/<c>`` REL-U is fitted on (empty for features without them)."""

    single: list[str]
    named_single: list[str]  # the single metrics listed by name (no wildcard): the headline ones
    sets: dict[str, list[str]]
    probabilities: list[str] = field(default_factory=list)

    def columns_of(self, name: str) -> list[str]:
        """The columns an input uses: a feature set's list, the probabilities, or the single metric itself."""
        if name == PROBABILITIES:
            return self.probabilities
        return self.sets.get(name, [name])

    def models(self, classifiers: tuple[str, ...], fit_name: str) -> list[tuple[str, str, list[str]]]:
        """(input name, classifier, columns) of every model for a fit; single metrics and REL-U (on the
        probabilities) only on ``known``."""
        out = [(c, THRESHOLD, [c]) for c in self.single] if fit_name == "known" else []
        if fit_name == "known" and self.probabilities:
            out.append((PROBABILITIES, REL_U, self.probabilities))
        out += [(name, clf, cols) for name, cols in self.sets.items() for clf in classifiers]
        return out


def resolve_inputs(cfg: MetaConfig, metric_cols: list[str]) -> Inputs:
    """The single metrics and feature sets of ``cfg`` resolved against the metric columns of a
    features table (:func:`gradmeta.features.metric_columns`)."""
    single = expand_patterns(cfg.single_metrics, metric_cols, "meta.single_metrics", cfg.params_file)
    named = [c for c in single if c in cfg.single_metrics]
    sets = {name: expand_patterns(pats, metric_cols, f"meta.feature_sets.{name}", cfg.params_file)
            for name, pats in cfg.feature_sets.items()}
    return Inputs(single, named, sets, [c for c in metric_cols if c.startswith("prob/")])
