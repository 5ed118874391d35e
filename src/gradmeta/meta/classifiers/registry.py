"""The meta classifier registry: a meta classifier is one file whose class registers its name, its params
group and its thread knob, as a detector does.

    @register_meta_classifier("xgboost", params={"max_depth": Param(int, min=1), ...}, threads="n_jobs")
    class XGBoostMetaClassifier(ThresholdedClassifier):
        def __init__(self, max_depth: int = 3, ..., random_state: int = 0): ...

The name is a ``meta.classifiers`` entry and the params group ``meta.<name>``. Each parameter is declared
once: its bounds by its Param, which :class:`gradmeta.meta.config.MetaConfig` reads params.yaml with and
from which the class's scikit-learn constraints are made (``_parameter_constraints``), and its default by
the constructor's argument (the library's default is the pipeline's). ``threads``: the constructor
argument that sets a fit's threads (the meta stage runs ``meta.n_jobs`` fits at once and budgets the
cores with it). Every fit gets ``random_state`` (the split's seed). The state a fitted model saves is its
own (``state()``/``from_state``, :class:`.thresholded.ThresholdedClassifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from sklearn.utils._param_validation import Interval, StrOptions

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, declared_default, registered_name
from gradmeta.meta.classifiers.thresholded import ThresholdedClassifier


@dataclass(frozen=True)
class MetaSpec:
    """A registered meta classifier: its class, parameters and thread knob."""

    name: str
    cls: type[ThresholdedClassifier]
    params: Mapping[str, Param] = field(default_factory=dict)
    threads: str | None = None

    def defaults(self) -> dict[str, Any]:
        return {k: list(p.default) if isinstance(p.default, tuple) else p.default for k, p in self.params.items()}


META_CLASSIFIERS: dict[str, MetaSpec] = {}


def constraints(param: Param) -> list[Any]:
    """scikit-learn's ``_parameter_constraints`` entry of one declared parameter."""
    out: list[Any] = []
    if param.kind is bool:
        out.append("boolean")
    elif param.kind == "floats":
        out.append("array-like")
    else:
        left = param.min is not None and not param.min_exclusive
        right = param.max is not None and not param.max_exclusive
        closed = {(True, True): "both", (True, False): "left", (False, True): "right", (False, False): "neither"}[
            (left, right)]
        out.append(Interval(Integral if param.kind is int else Real, param.min, param.max, closed=closed))
    if param.words:
        out.append(StrOptions(set(param.words)))
    if param.allow_none:
        out.append(None)
    return out


def register_meta_classifier(name: str, *, params: Mapping[str, Param] | None = None,
                             threads: str | None = None) -> Callable[[type], type]:
    """Class decorator: register a :class:`ThresholdedClassifier` subclass as the meta classifier ``name``
    (see the module docstring). Another class under a taken name is an error; the same class again a no-op."""
    registered_name("meta classifier", name, None, None)

    def register(cls: type) -> type:
        registered_name("meta classifier", name, getattr(META_CLASSIFIERS.get(name), "cls", None), cls)
        if not issubclass(cls, ThresholdedClassifier):
            raise GradmetaError(f"meta classifier {name!r}: {cls.__name__} must subclass ThresholdedClassifier")
        declared = {k: declared_default(f"meta classifier {name!r}", cls, k, p) for k, p in (params or {}).items()}
        if threads is not None and threads not in declared:
            raise GradmetaError(f"meta classifier {name!r}: its threads argument {threads!r} is not one of its params")
        cls._parameter_constraints = {**{k: constraints(p) for k, p in declared.items()},
                                      "random_state": [Interval(Integral, 0, None, closed="left")]}
        cls.kind = name
        ThresholdedClassifier._KINDS[name] = cls
        META_CLASSIFIERS[name] = MetaSpec(name, cls, declared, threads)
        return cls

    return register


def meta_spec(name: str) -> MetaSpec:
    if name not in META_CLASSIFIERS:
        raise GradmetaError(f"unknown meta classifier {name!r}, expected one of {', '.join(META_CLASSIFIERS)}")
    return META_CLASSIFIERS[name]
