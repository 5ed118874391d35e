"""The detector registry: a detector is one file whose class registers its name and parameters.

    @register_detector("knn", fitted=True, params={"k": Param(int, min=1)})
    class KNN(FeatureDetector):
        def __init__(self, k: int = 10, ...): ...

The name is the ``detectors.use`` entry and the column ``detector/<name>`` (or the columns its
``columns`` method names); ``params`` are the ``detectors.<name>`` params group, with the pipeline's
bounds (``DetectorsConfig`` reads and checks them) and its defaults, each declared once: the
constructor's default of the argument of the same name (the library's default is the pipeline's), or,
for an argument the constructor requires (ViM's ``dim``, which depends on the model), the Param's own.
``fitted`` says whether the detector needs state from the known concept's
train split (the ``detectors`` stage fits it on the penultimate features and saves its ``state()``), as
opposed to one that scores straight from the model (ODIN, MC dropout). ``key_prefix`` names the params in
the flat record written into the outputs' metadata (``<prefix>_<param>``; the name by default).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import ParamReader

UNSET = object()  # a Param without a default of its own: the constructor's argument gives it


@dataclass(frozen=True)
class Param:
    """One detector parameter: its type (``int`` or ``float``), bounds, and default (``default``: only for an
    argument the detector's constructor requires; otherwise the constructor's default is the one)."""

    kind: type = int
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    allow_none: bool = False
    default: Any = UNSET

    def read(self, reader: ParamReader, key: str) -> Any:
        """The value of ``key`` in ``reader``'s group, checked (a bad one names the parameter)."""
        if self.kind is int:
            return reader.int(key, self.default, min=None if self.min is None else int(self.min),
                              max=None if self.max is None else int(self.max), allow_none=self.allow_none)
        if self.kind is float:
            return reader.float(key, self.default, min=self.min, max=self.max, min_exclusive=self.min_exclusive)
        raise GradmetaError(f"detector parameter {key}: kind must be int or float, got {self.kind!r}")


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector: its class, parameters, and whether it is fitted on training features."""

    name: str
    cls: type
    params: Mapping[str, Param] = field(default_factory=dict)
    fitted: bool = False
    key_prefix: str = ""

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}


REGISTRY: dict[str, DetectorSpec] = {}


def register_detector(name: str, *, params: Mapping[str, Param] | None = None, fitted: bool = False,
                      key_prefix: str | None = None) -> Callable[[type], type]:
    """Class decorator: register the detector class under ``name`` (see the module docstring).
    Registering another class under a taken name is an error; the same class again is a no-op."""
    if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise GradmetaError(f"detector name must be letters, digits and '_', starting with a letter, got {name!r}")

    def register(cls: type) -> type:
        known = REGISTRY.get(name)
        if known is not None and known.cls.__qualname__ != cls.__qualname__:
            raise GradmetaError(f"detector {name!r} is already registered ({known.cls.__qualname__})")
        declared = {key: _with_default(name, cls, key, p) for key, p in (params or {}).items()}
        REGISTRY[name] = DetectorSpec(name, cls, declared, fitted, key_prefix or name)
        cls.detector_name = name
        return cls

    return register


def _with_default(name: str, cls: type, key: str, param: Param) -> Param:
    """``param`` with its default: the constructor's argument ``key``'s, declared there once. A Param may carry
    its own only where the constructor requires the argument; both, or neither, is an error."""
    argument = inspect.signature(cls.__init__).parameters.get(key)
    if argument is None:
        raise GradmetaError(f"detector {name!r}: parameter {key!r} is not an argument of {cls.__name__}()")
    has_own = argument.default is not inspect.Parameter.empty
    if has_own and param.default is not UNSET:
        raise GradmetaError(f"detector {name!r}: the default of {key!r} is declared twice ({cls.__name__}() has "
                            f"{argument.default!r}, its Param {param.default!r}); keep the constructor's")
    if not has_own and param.default is UNSET:
        raise GradmetaError(f"detector {name!r}: parameter {key!r} has no default ({cls.__name__}() requires it); "
                            "give its Param one")
    return param if not has_own else replace(param, default=argument.default)


def detector_spec(name: str) -> DetectorSpec:
    if name not in REGISTRY:
        raise GradmetaError(f"unknown detector {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]
