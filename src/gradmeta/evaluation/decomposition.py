"""The report's answer to the critique that gradient scores are confidence times feature norm in
disguise (Igoe et al., "How useful are gradients for OOD detection really?", arXiv 2205.10439).

At the logits layer, with the cross-entropy at the predicted class, the per-sample weight gradient is
(p - e_pred) a^T: its L1 norm is 2 (1 - p_max) ||a||_1 and its L2 norm ||p - e_pred||_2 ||a||_2. For
every layer with a rule the features hold the factors of its gradient (``factor/<layer>/...``: the
norms of the layer's input and of its output gradient). Two feature sets then say what the gradient
statistics add beyond those factors: ``confidence+norms`` (the softmax metrics and every layer's
factors) and ``confidence+norms+gradient`` (the same plus ``grad/*``). Their AUROCs are compared split
by split (the same meta-train / meta-test rows): the gain is the mean ± std over the repeats of the
per-split difference, not a difference of means.
"""

from __future__ import annotations

import pandas as pd

BASE_SET = "confidence+norms"
FULL_SET = "confidence+norms+gradient"


def paired_gains(results: pd.DataFrame, classifier: str, base: str = BASE_SET, full: str = FULL_SET) -> pd.DataFrame:
    """Per (scenario, test set) of the misclassification and unknown-concept scenarios: the mean and
    std over repeats of ``base``'s AUROC, ``full``'s, and their per-repeat difference (full - base),
    with ``classifier``. Empty if either feature set was not fitted."""
    hit = results[(results.classifier == classifier) & results.input.isin([base, full])
                  & results.scenario.isin(["misclassification", "unknown"])]
    if hit.empty or set(hit.input) != {base, full}:
        return pd.DataFrame()
    wide = hit.pivot_table(index=["scenario", "test_set", "repeat"], columns="input", values="auroc", sort=False)
    wide["gain"] = wide[full] - wide[base]
    grouped = wide.groupby(level=["scenario", "test_set"], sort=False)
    out = pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=1).fillna(0.0)}, axis=1)
    out.columns = [f"{col}_{stat}" for stat, col in out.columns]
    return out.reset_index()


def verdict(gain_mean: float, gain_std: float, margin: float) -> str:
    """``adds`` (the mean gain exceeds ``margin`` and its std), ``loses`` (the mirror), else ``nothing``."""
    if gain_mean > margin and gain_mean > gain_std:
        return "adds"
    if gain_mean < -margin and -gain_mean > gain_std:
        return "loses"
    return "nothing"


def decomposition_section(results: pd.DataFrame, classifier: str, margin: float) -> list[str]:
    """The report section (a table and one judged line), or nothing if the two feature sets are not fitted."""
    gains = paired_gains(results, classifier)
    if gains.empty:
        return []
    lines = ["## What gradients add beyond confidence x feature norm", "",
             (f"`{BASE_SET}`: the softmax metrics and, for every layer with a rule, the L1 and L2 norms of its "
              f"input and of its output gradient (the factors of its per-sample gradient; at the logits layer the "
              f"gradient's L1 norm is exactly 2 (1 - p_max) ||a||_1). `{FULL_SET}`: the same plus every gradient "
              f"statistic. Meta classifier: {classifier}. Gain: mean ± std over the splits of the per-split AUROC "
              f"difference on the same rows; `adds` where it exceeds {margin:g} and its own std."), "",
             f"| scenario | test set | `{BASE_SET}` AUROC | `{FULL_SET}` AUROC | gain | verdict |",
             "|---|---|---|---|---|---|"]
    words = []
    for row in gains.to_dict("records"):
        word = verdict(row["gain_mean"], row["gain_std"], margin)
        words.append(word)
        lines.append(f"| {row['scenario']} | {row['test_set']} | {_cell(row, BASE_SET)} | {_cell(row, FULL_SET)} | "
                     f"{_cell(row, 'gain', '+.3f')} | {word} |")
    added = sum(w == "adds" for w in words)
    lost = sum(w == "loses" for w in words)
    lines += ["", (f"Beyond confidence and the norms of each layer's input and output gradient, the gradient statistics "
                   f"add AUROC on {added} of {len(words)} test sets, lose on {lost}, and change nothing measurable on "
                   f"{len(words) - added - lost}."), ""]
    return lines


def _cell(row: dict, name: str, fmt: str = ".3f") -> str:
    return f"{row[f'{name}_mean']:{fmt}} ± {row[f'{name}_std']:.3f}"
