"""The evaluate stage's work: score every meta classifier, write metrics, plot data, figures, report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from gradmeta.core.atomic import round_floats, write_bytes, write_json
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, as_params, read_settings, setting
from gradmeta.evaluation.claims import Verdict, claim_a, claim_b, claim_c, claim_d
from gradmeta.evaluation.decomposition import BASE_SET, FULL_SET, decomposition_section
from gradmeta.evaluation.field import field_rows, field_section
from gradmeta.evaluation.groups import (
    group_results,
    group_rows,
    groups_headline,
    groups_section,
    single_score_rows,
)
from gradmeta.evaluation.headline import headline_metrics
from gradmeta.evaluation.openood import reference_section
from gradmeta.evaluation.plots import write_auroc_bars, write_histograms, write_roc
from gradmeta.evaluation.provenance import data_section
from gradmeta.evaluation.rejection import rejection_csv, score_rejection, summarize_rejection
from gradmeta.evaluation.rejection_report import (
    CURVES,
    known_unknowns_groups,
    rejection_headline,
    rejection_section,
    write_curves,
)
from gradmeta.evaluation.report import measures_csv, render_report, scenarios_json
from gradmeta.evaluation.scoring import score_all
from gradmeta.evaluation.summary import cnn_context, summarize_results
from gradmeta.evaluation.winners import ScenarioWinners, scenario_winners, winner_lines
from gradmeta.meta.classifiers import THRESHOLD
from gradmeta.meta.config import MetaConfig
from gradmeta.meta.fitting import FittedMeta, check_split_rows
from gradmeta.meta.inputs import Inputs

DEFAULT_REMOTE = ("cifar10", "noise")


@dataclass(frozen=True)
class EvaluateConfig:
    """The ``evaluate`` parameter group, resolved against the fitted meta classifiers' config."""

    primary_classifier: str
    remote_concepts: tuple[str, ...]
    histogram_metrics: tuple[str, ...] = setting(("softmax/entropy", "grad/all/l2"), Param(
        "strs", doc="columns whose histograms (known vs unknown, correct vs wrong) the report draws"))
    min_metrics: int = setting(2, Param(int, min=1, doc="claim (a): gradient metrics that must beat the softmax "
                                                        "baseline"))
    margin: float = setting(0.01, Param(float, min=0.0, doc="claims (c) (twice this) and (d): the smallest AUROC "
                                                            "difference that counts"))
    unstable_std: float = setting(0.05, Param(float, min=0.0, doc="an AUROC std over the repeats above this marks a "
                                                                  "cell (and the claims resting on it)"))
    rejection_ratio: float = setting(1.0, Param(float, min=0.0, min_exclusive=True, doc="unknown images per known "
                                                "meta-test row in the rejection scenario's mixture"),
                                     key="rejection_unknown_ratio")
    min_accuracy: float = setting(0.5, Param(float, min=0.0, max=1.0, doc="below this test accuracy of the CNN on "
                                                                          "the known concept, no claim is judged"))
    min_images: int = setting(100, Param(int, min=0, doc="an unknown concept with fewer evaluation images is "
                                                         "reported but left out of the verdicts"))
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # OOD groups: name -> unknown concepts
    headline_prefix: str = setting("", Param(str, doc="before every key of headline.json: up to 8 of a-z, 0-9 "
                                                      "and _ (projects of one repository get distinct columns)"))
    params_file: str = "params.yaml"

    OTHER_PARAMS: ClassVar[dict[str, str]] = {
        "primary_classifier": "the meta classifier the claims are judged with: one of meta.classifiers (null: the "
                              "first)",
        "remote_concepts": "the unknown concepts far from the known one, for claim (d) (null: those of cifar10, "
                           "noise there are)",
        "groups": "OOD groups: name -> a non-empty list of unknown concepts, each with OpenOOD's detection cells "
                  "(null: none)"}

    @property
    def ood_concepts(self) -> tuple[str, ...]:
        """Every concept of a group, once, in order (each gets OpenOOD's detection cells)."""
        return tuple(dict.fromkeys(c for members in self.groups.values() for c in members))

    @classmethod
    def from_params(cls, params: dict[str, Any], cfg: MetaConfig) -> EvaluateConfig:
        """Validate ``params['evaluate']`` against ``cfg``, the meta classifiers' config (the fitted one)."""
        r = as_params(params).reader("evaluate")
        unknowns = list(cfg.unknown_concepts)
        primary = r.str("primary_classifier", None, choices=cfg.classifiers, allow_none=True) or cfg.classifiers[0]
        listed = r.raw("remote_concepts", None)
        remote = ([c for c in DEFAULT_REMOTE if c in unknowns] if listed is None
                  else r.str_list("remote_concepts", choices=unknowns))
        out = cls(primary_classifier=primary, remote_concepts=tuple(remote), **read_settings(cls, r),
                  groups=_groups(r, unknowns), params_file=r.source)
        if not re.fullmatch(r"[a-z0-9_]{0,8}", out.headline_prefix):
            raise r.fail("headline_prefix", "up to 8 of a-z, 0-9 and _", out.headline_prefix)
        r.done()
        return out


def _groups(r, unknowns: list[str]) -> dict[str, tuple[str, ...]]:  # noqa: ANN001 - a ParamReader
    """``evaluate.groups``: null, or a mapping of group name to a non-empty list of unknown concepts."""
    if r.raw("groups", None) is None:
        return {}
    groups = r.group("groups")
    out = {name: tuple(groups.str_list(name, choices=unknowns, non_empty=True)) for name in groups.keys()}
    groups.done()
    return out


def judge_claims(summary, known: str, unknowns: list[str], cfg: EvaluateConfig, accuracy: float | None = None,
                 rows: dict[str, int] | None = None) -> tuple[list[Verdict], list[str]]:
    """The verdicts on claims (a)-(d) and the notes that go with them. With the CNN's ``accuracy`` on
    the known concept's evaluation rows below ``cfg.min_accuracy``, no claim is judged (each is n/a,
    saying why): the claims are about a classifier that works, and one near chance proves nothing. An
    unknown concept with fewer than ``cfg.min_images`` evaluation ``rows`` is left out of the verdicts on
    (b)-(d), and a note says so (its cells stay in the report)."""
    primary = cfg.primary_classifier
    small = [c for c in unknowns if rows is not None and rows.get(c, 0) < cfg.min_images]
    judged = [c for c in unknowns if c not in small]
    remote = [c for c in cfg.remote_concepts if c not in small]
    verdict_d, note_d = claim_d(summary, remote, primary, cfg.margin, known=known)
    verdicts = [claim_a(summary, known, cfg.min_metrics), claim_b(summary, judged, primary),
                claim_c(summary, judged, primary, 2 * cfg.margin, known=known), verdict_d]
    if accuracy is not None and accuracy < cfg.min_accuracy:
        why = (f"not judged: the CNN's test accuracy on {known} is {accuracy:.4f}, below evaluate.min_accuracy "
               f"{cfg.min_accuracy:g} (train it longer or better, or lower that floor in {cfg.params_file})")
        return [replace(v, holds=None, evidence=why, cells=()) for v in verdicts], []
    if small and not judged:
        why = (f"not judged: every unknown concept has fewer than evaluate.min_images {cfg.min_images} evaluation "
               "images")
        verdicts = [verdicts[0], *(replace(v, holds=None, evidence=why, cells=()) for v in verdicts[1:])]
    notes = [f"`{c}` has {rows[c]} evaluation images, fewer than evaluate.min_images {cfg.min_images}: its cells are "
             "reported, but the verdicts on claims (b)-(d) leave it out (the pooled cells still hold its rows)."
             for c in small]
    return verdicts, [*notes, note_d]


@dataclass
class EvaluateResult:
    """Everything the evaluate stage writes, computed: the scored results and their summary, the ROC
    curves, the claims' verdicts, and what the report and plots show."""

    cfg: EvaluateConfig
    fitted: FittedMeta
    frames: dict[str, Any]
    metas: dict[str, dict[str, Any]]
    summary: Any
    roc: dict
    curves: dict[str, tuple[str, str]]
    headline: list[tuple[str, str]]
    verdicts: list[Verdict]
    notes: list[str]
    n_results: int
    decomposition: list[str]
    rejection: Rejection
    winners: list[ScenarioWinners]

    @property
    def known(self) -> str:
        return self.fitted.config.known_concept

    @property
    def unknowns(self) -> list[str]:
        return list(self.fitted.config.unknown_concepts)


@dataclass
class Rejection:
    """The rejection scenario scored: its long results, summary, the repeat-0 scores kept for the
    curves, the feature sets compared, the headline's (the one with the most columns), and the
    known-unknowns setting of the pooled cell."""

    results: Any
    summary: Any
    kept: dict
    sets: list[str]
    headline_set: str | None
    pooled_group: str


def largest_set(inputs: Inputs) -> str | None:
    """The feature set of the headline numbers (``headline.json``, the rejection headline): the one with the
    most columns (a tie: the first listed); None without feature sets."""
    return max(inputs.sets, key=lambda s: len(inputs.sets[s])) if inputs.sets else None


def run_rejection(cfg: EvaluateConfig, fitted: FittedMeta, frames: dict[str, Any]) -> Rejection:
    """Score the rejection scenario (:mod:`gradmeta.evaluation.rejection`) with every fitted model."""
    sets = list(fitted.inputs.sets)
    headline_set = largest_set(fitted.inputs)
    keep = tuple(CURVES.values()) + ((headline_set, cfg.primary_classifier),) if headline_set else tuple(CURVES.values())
    results, kept = score_rejection(frames, fitted, cfg.rejection_ratio, keep)
    summary = summarize_rejection(results)
    pooled_group = known_unknowns_groups(summary)[1]
    return Rejection(results, summary, kept, sets, headline_set, pooled_group)


def run(cfg: EvaluateConfig, fitted: FittedMeta, frames: dict[str, Any], metas: dict[str, dict[str, Any]],
        meta_path: str = "models/meta/meta.npz") -> EvaluateResult:
    """Score the fitted meta classifiers on the meta-test rows of ``frames`` (the features tables
    they were fitted on: checked), summarise, and judge the claims."""
    meta_cfg = fitted.config
    known, unknowns = meta_cfg.known_concept, list(meta_cfg.unknown_concepts)
    check_split_rows(fitted, frames, meta_path)
    missing = [m for m in cfg.histogram_metrics if m not in frames[known].columns]
    if missing:
        raise GradmetaError(f"{cfg.params_file}: evaluate.histogram_metrics: no feature column {missing[0]!r}")
    composite = [(name, clf) for name in fitted.inputs.sets for clf in meta_cfg.classifiers]
    headline = [(m, THRESHOLD) for m in fitted.inputs.named_single] + composite
    curves = {"entropy": ("softmax/entropy", THRESHOLD), "gradient": ("gradient", cfg.primary_classifier),
              "all": ("all", cfg.primary_classifier)}
    results, roc = score_all(frames, fitted, tuple(curves.values()), cfg.ood_concepts)
    results = pd.concat([results, group_results(results, cfg.groups)], ignore_index=True)
    summary = summarize_results(results)
    context = cnn_context(frames)
    verdicts, notes = judge_claims(summary, known, unknowns, cfg, context[known]["cnn_accuracy"],
                                   {c: context[c]["rows"] for c in unknowns})
    decomposition = decomposition_section(results, cfg.primary_classifier, cfg.margin)
    winners = scenario_winners(results, known, tuple(cfg.groups))
    return EvaluateResult(cfg, fitted, frames, metas, summary, roc, curves, headline, verdicts, notes, len(results),
                      decomposition, run_rejection(cfg, fitted, frames), winners)


OWN_FILES = {"plots": ("roc_*.json", "auroc_*.json", "risk_coverage_*.json"),
             "figures": ("roc_*.png", "auroc_*.png", "risk_coverage.png"), "histograms": ("hist_*.png",)}


def own_files(folder: Path) -> list[Path]:
    """The files of ``folder`` (``plots``, ``figures`` or ``histograms`` of the metrics folder) that this
    stage writes, by their names' patterns (:data:`OWN_FILES`), sorted; nothing else in it is touched
    or shown (the folder may be a user's own ``--metrics-dir``)."""
    return sorted({p for pattern in OWN_FILES[folder.name] for p in folder.glob(pattern) if p.is_file()})


def write(ev: EvaluateResult, metrics_dir: str) -> None:
    """``headline.json`` (:mod:`.headline`), ``scenarios.json``, ``measures.csv``, ``report.md``, ``plots/`` (Vega
    data for DVC), ``figures/`` (the same charts as PNGs, for the report) and ``histograms/`` (PNGs only) in
    ``metrics_dir``."""
    cfg, known, unknowns, meta_cfg = ev.cfg, ev.known, ev.unknowns, ev.fitted.config
    metrics = Path(metrics_dir)
    plots_dir, figures_dir, histograms_dir = metrics / "plots", metrics / "figures", metrics / "histograms"
    for d in (plots_dir, figures_dir, histograms_dir):  # no stale file of this stage's; nothing else touched
        for stale in own_files(d):
            stale.unlink()
    write_roc(ev.roc, ev.curves, known, plots_dir, figures_dir)
    write_auroc_bars(ev.summary, ev.headline, known, plots_dir, figures_dir)
    write_auroc_bars(ev.summary, single_score_rows(ev.fitted.inputs.single, ev.fitted.inputs.named_single), known,
                     plots_dir, figures_dir, chart="auroc_single")
    write_histograms(ev.frames, list(cfg.histogram_metrics), known, histograms_dir)
    rej = ev.rejection
    write_curves(rej.kept, rej.headline_set, cfg.primary_classifier, rej.pooled_group, plots_dir, figures_dir)
    figures = [f"{d.name}/{p.name}" for d in (figures_dir, histograms_dir) for p in own_files(d)]
    context = cnn_context(ev.frames)
    rows = field_rows(ev.fitted.inputs.single, list(ev.fitted.inputs.sets), cfg.primary_classifier)
    inputs = ev.fitted.inputs
    ood_rows = group_rows(inputs.single, inputs.named_single, list(inputs.sets), meta_cfg.classifiers)
    ood_lines = groups_section(ev.summary, ood_rows, cfg.groups, known, cfg.unstable_std) + reference_section(
        ev.summary, ev.metas, known, cfg.groups, context[known]["cnn_accuracy"],
        [(s, c) for s, c in ood_rows if c != THRESHOLD], {c: context[c]["rows"] for c in (known, *cfg.ood_concepts)})
    report = render_report(data_lines=data_section(ev.metas, known),
                           field_lines=field_section(ev.summary, rows, known, unknowns, cfg.unstable_std) + ood_lines
                           + ev.decomposition + rejection_section(rej.summary, rej.results, rej.sets,
                                                                  cfg.primary_classifier, unknowns, cfg.rejection_ratio),
                           summary=ev.summary, context=context, main_rows=ev.headline, known=known,
                           unknowns=unknowns, verdicts=ev.verdicts, notes=ev.notes, repeats=meta_cfg.repeats,
                           test_fraction=meta_cfg.test_fraction, figures=figures, unstable_std=cfg.unstable_std,
                           winner_lines=winner_lines(ev.winners))
    headline_sets = [s for s in ev.fitted.inputs.sets if s not in (BASE_SET, FULL_SET)]  # the decomposition's: report
    headline = scenarios_json(ev.summary, context, known, unknowns, cfg.primary_classifier, headline_sets,
                              ev.verdicts)
    rejection_headline_numbers = rejection_headline(rej.summary, [rej.headline_set] if rej.headline_set else [],
                                                    cfg.primary_classifier)
    if rejection_headline_numbers:
        headline["rejection"] = rejection_headline_numbers
    if cfg.groups:
        headline["ood_groups"] = round_floats(groups_headline(ev.summary, rows, cfg.groups))
    write_json(metrics / "scenarios.json", headline)
    numbers = headline_metrics(ev.summary, ev.winners, known, context[known]["cnn_accuracy"], cfg.primary_classifier,
                               rej.headline_set)
    write_json(metrics / "headline.json", {cfg.headline_prefix + k: v for k, v in numbers.items()})
    write_bytes(metrics / "rejection.csv", rejection_csv(rej.summary).encode())
    write_bytes(metrics / "measures.csv", measures_csv(ev.summary).encode())
    write_bytes(metrics / "report.md", report.encode())
