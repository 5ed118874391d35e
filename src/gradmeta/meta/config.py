"""The ``meta`` parameter group, validated, and the meta classifiers it names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gradmeta.core.concepts import DEFAULT_KNOWN, Concepts, concept_names
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, ParamReader, as_params, read_settings, seed_param, setting, threads_param
from gradmeta.meta.classifiers import (
    META_CLASSIFIERS,
    REL_U,
    THRESHOLD,
    RelUClassifier,
    SingleMetricClassifier,
    ThresholdedClassifier,
    documented_sign,
    meta_spec,
)
from gradmeta.meta.scenarios import LEAVE_ONE_OUT

CLASSIFIERS = ("logistic", "xgboost")  # the default of meta.classifiers; every registered one may be named


def _default_classifier_params() -> dict[str, dict[str, Any]]:
    return {name: spec.defaults() for name, spec in META_CLASSIFIERS.items()}


def _default_feature_sets() -> dict[str, tuple[str, ...]]:
    return {"softmax": ("softmax/*",), "gradient": ("grad/*",), "entropy+gradient": ("softmax/entropy", "grad/*"),
            "all": ("softmax/*", "grad/*", "baseline/*")}


@dataclass(frozen=True)
class MetaConfig:
    """The ``meta`` parameter group, with the known concept from ``data.known``."""

    seed: int = setting(0, seed_param("the meta-train/meta-test splits and the classifiers' seeds"))
    repeats: int = setting(5, Param(int, min=1, doc="random splits, each fitted and scored (mean and std)"))
    test_fraction: float = setting(0.5, Param(float, min=0.0, max=1.0, min_exclusive=True, max_exclusive=True,
                                              doc="of the rows held out as meta-test"))
    known_concept: str = DEFAULT_KNOWN
    unknown_concepts: tuple[str, ...] = ("letters", "omniglot", "cifar10", "noise")
    classifiers: tuple[str, ...] = setting(CLASSIFIERS, Param("strs", choices=lambda: sorted(META_CLASSIFIERS),
                                                             non_empty=True, doc="the meta classifiers fitted on "
                                                             "each feature set"))
    single_metrics: tuple[str, ...] = setting(
        ("softmax/entropy", "softmax/max_prob", "softmax/energy", "baseline/gradnorm", "grad/*"),
        Param("strs", doc="column patterns each scored alone (a thresholded single metric)"))
    feature_sets: dict[str, tuple[str, ...]] = field(default_factory=_default_feature_sets)
    known_unknowns: str | tuple[str, ...] = LEAVE_ONE_OUT
    classifier_params: dict[str, dict[str, Any]] = field(default_factory=_default_classifier_params)  # meta.<name>
    n_jobs: int = setting(1, threads_param("fits at once (threads); no effect on the result"))
    params_file: str = field(default="params.yaml", compare=False)  # named in errors raised later

    OTHER_PARAMS: ClassVar[dict[str, str]] = {
        "unknown_concepts": "null (every concept but the known one) or a non-empty list of concepts",
        "feature_sets": "name -> a non-empty list of column patterns; each set is one meta classifier's input",
        "known_unknowns": f"'{LEAVE_ONE_OUT}' or a list of unknown concepts seen in meta-training (the "
                          "known-unknowns scenario)"}

    def __post_init__(self) -> None:
        # a partial dict (a library caller's) means: these keys, the defaults for the rest
        given = dict(self.classifier_params)
        object.__setattr__(self, "classifier_params", {name: {**spec.defaults(), **given.pop(name, {})}
                                                       for name, spec in META_CLASSIFIERS.items()})
        if given:
            raise GradmetaError(f"classifier_params names unknown meta classifiers: {', '.join(given)}")

    @classmethod
    def from_params(cls, params: dict[str, Any], concepts: Concepts | None = None) -> MetaConfig:
        """Validate ``params['meta']``; a bad value is a GradmetaError naming the parameter.

        ``meta.unknown_concepts`` (null = every concept but the known one) is checked against the
        concepts of ``params['data']``, or against ``concepts`` when given (a saved config)."""
        params = as_params(params)
        concepts = concepts or concept_names(params)
        r = params.reader("meta")
        listed = r.raw("unknown_concepts", None)
        if listed is not None and (not isinstance(listed, list) or not listed):
            raise r.fail("unknown_concepts", f"null (every concept but {concepts.known}) or a non-empty list of "
                         f"concepts from {', '.join(concepts.unknowns) or '(none: data has no other concept)'}", listed)
        unknowns = (concepts.unknowns if listed is None
                    else tuple(r.str_list("unknown_concepts", choices=concepts.unknowns)))
        cfg = cls(
            **read_settings(cls, r),
            known_concept=concepts.known,
            unknown_concepts=unknowns,
            feature_sets=_feature_sets(r, _default_feature_sets()),
            known_unknowns=_known_unknowns(r, unknowns, LEAVE_ONE_OUT),
            classifier_params={name: _classifier_params(r.group(name), spec.params)
                               for name, spec in META_CLASSIFIERS.items()},
            params_file=r.source,
        )
        r.done()
        return cfg

    def make(self, classifier: str, seed: int, metric: str = "") -> ThresholdedClassifier:
        """A fresh, unfitted meta classifier of the given kind (``threshold`` or one of CLASSIFIERS);
        for ``threshold``, ``metric`` is the column it scores with: a detector's or baseline's own sign
        is kept, a raw metric's orientation is learned (:func:`documented_sign`)."""
        if classifier == THRESHOLD:
            return SingleMetricClassifier(sign=documented_sign(metric))
        if classifier == REL_U:
            return RelUClassifier()
        return meta_spec(classifier).cls(**self.classifier_params[classifier], random_state=seed)

    def threads_per_fit(self) -> int:
        """The most threads one fit of ``classifiers`` uses (its declared thread argument; 1 without one)."""
        knobs = [(meta_spec(c).threads, c) for c in self.classifiers]
        return max([int(self.classifier_params[c][knob]) for knob, c in knobs if knob], default=1)


def _known_unknowns(r: ParamReader, unknowns: tuple[str, ...], default: str) -> str | tuple[str, ...]:
    raw = r.raw("known_unknowns", default)
    if raw == LEAVE_ONE_OUT:
        return LEAVE_ONE_OUT
    listed = r.str_list("known_unknowns", None) if isinstance(raw, list) else None
    if listed is None or not all(c in unknowns for c in listed):
        raise r.fail("known_unknowns", f"'{LEAVE_ONE_OUT}' or a list of concepts from meta.unknown_concepts "
                     f"({', '.join(unknowns)})", raw)
    return tuple(listed)


def _feature_sets(r: ParamReader, default: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    raw = r.raw("feature_sets", None)
    if raw is None:
        return dict(default)
    if not isinstance(raw, dict) or not raw:
        raise r.fail("feature_sets", "a non-empty mapping of name to a list of column patterns", raw)
    sets = r.group("feature_sets")
    return {name: tuple(sets.str_list(name, non_empty=True)) for name in raw}


def _classifier_params(group: ParamReader, params: Mapping[str, Param]) -> dict[str, Any]:
    """One meta classifier's group ``meta.<name>``, read as its Params declare."""
    return {key: param.read(group, key) for key, param in params.items()}
