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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, declared_default, registered_name


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
    registered_name("detector", name, None, None)

    def register(cls: type) -> type:
        registered_name("detector", name, getattr(REGISTRY.get(name), "cls", None), cls)
        declared = {key: declared_default(f"detector {name!r}", cls, key, p) for key, p in (params or {}).items()}
        REGISTRY[name] = DetectorSpec(name, cls, declared, fitted, key_prefix or name)
        cls.detector_name = name
        return cls

    return register


def detector_spec(name: str) -> DetectorSpec:
    if name not in REGISTRY:
        raise GradmetaError(f"unknown detector {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]
