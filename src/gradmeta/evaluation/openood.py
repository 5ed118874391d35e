"""OpenOOD v1.5's published CIFAR-10 numbers beside gradmeta's own, when the run is that protocol.

Reference: Zhang, Yang, Wang et al., "OpenOOD v1.5: Enhanced Benchmark for Out-of-Distribution Detection"
(2023), ``results/cifar10.csv`` of the OpenOOD repository: ResNet-18 (32x32) trained with cross-entropy,
three checkpoints, ID accuracy 95.06 %, post-hoc methods; near-OOD = CIFAR-100 and TinyImageNet, far-OOD
= MNIST, SVHN, Textures and Places365; each group's AUROC is the mean of its sets' AUROCs, in percent.

The protocol is: the known concept is CIFAR-10 read from its archive, and ``evaluate.groups`` has ``near``
= the concepts of sources cifar100 and tinyimagenet and ``far`` = those of mnist, svhn, textures and
places365, every one read from its archive. A run on stand-ins says that the reference does not apply
and shows no published number.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gradmeta.evaluation.groups import OOD_GROUP
from gradmeta.evaluation.summary import summary_row
from gradmeta.meta.classifiers import THRESHOLD

SOURCE = "OpenOOD v1.5 (Zhang et al. 2023), results/cifar10.csv: ResNet-18, cross-entropy training, mean of 3 seeds"
PUBLISHED_ACCURACY = 95.06
# method: (gradmeta's single score, near-OOD AUROC %, far-OOD AUROC %)
PUBLISHED = {
    "MSP": ("softmax/max_prob", 88.03, 90.73),
    "ODIN": ("detector/odin", 82.87, 87.96),
    "MDS": ("detector/mahalanobis", 84.20, 89.72),
    "ReAct": ("detector/react", 87.11, 90.42),
    "KNN": ("detector/knn", 90.64, 92.96),
    "ViM": ("detector/vim", 88.68, 93.48),
    "EBO": ("softmax/energy", 87.58, 91.21),
    "MLS": ("softmax/max_logit", 87.52, 91.10),
    "RMDS": ("detector/rmd", 89.80, 92.20),
    "GradNorm": ("baseline/gradnorm", 54.90, 57.55),
}
KNOWN_SOURCE = "cifar10"
PROTOCOL = {"near": ("cifar100", "tinyimagenet"), "far": ("mnist", "svhn", "textures", "places365")}


def protocol_status(metas: dict[str, dict[str, Any]], known: str,
                    groups: dict[str, tuple[str, ...]]) -> tuple[bool, str] | None:
    """None when the groups are not OpenOOD's near and far; else whether the reference applies and, if it does
    not, why (a stand-in, another known concept, a missing set)."""
    if set(groups) != set(PROTOCOL):
        return None
    meta = metas.get(known, {})
    if meta.get("source") != KNOWN_SOURCE or meta.get("kind") != "archive":
        return False, (f"the known concept `{known}` is {meta.get('source')} ({meta.get('kind')}), not CIFAR-10 read "
                       "from its archive")
    for name, sources in PROTOCOL.items():
        got = sorted(metas.get(c, {}).get("source", "?") for c in groups[name])
        if got != sorted(sources):
            return False, f"the {name} group is {', '.join(got)}, not OpenOOD's {', '.join(sorted(sources))}"
    stand_ins = [c for members in groups.values() for c in members if metas.get(c, {}).get("kind") != "archive"]
    if stand_ins:
        return False, f"{', '.join(f'`{c}`' for c in stand_ins)} are not read from the real archives"
    return True, ""


def _percent(summary: pd.DataFrame, group: str, inp: str, clf: str) -> str:
    row = summary_row(summary, OOD_GROUP, group, "", inp, clf)
    return "–" if row is None else f"{100 * row['auroc_mean']:.2f} ± {100 * row['auroc_std']:.2f}"


def reference_section(summary: pd.DataFrame, metas: dict[str, dict[str, Any]], known: str,
                      groups: dict[str, tuple[str, ...]], accuracy: float, meta_rows: list[tuple[str, str]],
                      rows_per_concept: dict[str, int]) -> list[str]:
    """The report section: OpenOOD's layout (near-OOD AUROC, far-OOD AUROC, ID accuracy) with gradmeta's number
    and the published one side by side for every method both have, then gradmeta's meta classifiers; on a run
    that is not the protocol on the real archives, one line saying why the reference does not apply."""
    status = protocol_status(metas, known, groups)
    if status is None:
        return []
    applies, why = status
    head = ["## OpenOOD v1.5's CIFAR-10 benchmark", ""]
    if not applies:
        return head + [f"OpenOOD's published numbers do not apply to this run: {why}. The groups are computed "
                       "the same way (above); no published number is shown.", ""]
    sizes = ", ".join(f"`{c}` {n}" for c, n in rows_per_concept.items())
    lines = head + [f"Published: {SOURCE}. gradmeta: this run's CNN, its own detectors as single scores and its meta "
                    f"classifiers, AUROC in percent, mean ± std over the meta splits (their meta-test halves of: "
                    f"{sizes} rows).", "",
                    "| method | gradmeta input | near-OOD AUROC, gradmeta | near-OOD AUROC, OpenOOD v1.5 | "
                    "far-OOD AUROC, gradmeta | far-OOD AUROC, OpenOOD v1.5 |", "|---|---|---|---|---|---|"]
    for method, (inp, near, far) in PUBLISHED.items():
        lines.append(f"| {method} | `{inp}` | {_percent(summary, 'near', inp, THRESHOLD)} | {near:.2f} | "
                     f"{_percent(summary, 'far', inp, THRESHOLD)} | {far:.2f} |")
    for inp, clf in meta_rows:
        lines.append(f"| meta classifier | `{inp}`, {clf} | {_percent(summary, 'near', inp, clf)} | – | "
                     f"{_percent(summary, 'far', inp, clf)} | – |")
    lines += ["", f"ID accuracy: gradmeta's CNN {100 * accuracy:.2f} % on `{known}`; OpenOOD v1.5 "
              f"{PUBLISHED_ACCURACY:.2f} %.", ""]
    return lines
