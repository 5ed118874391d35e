"""The ``detectors`` parameter group: which registered detectors become ``detector/<name>`` columns,
their parameters (one group ``detectors.<name>`` each, as the registry declares them), and the further
gradient targets (``grad_<target>/...`` column groups)."""

from __future__ import annotations

import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param, as_params, read_settings, setting
from gradmeta.uncertainty.detectors.base import DETECTOR_CHUNK_SIZE, ModelSizes
from gradmeta.uncertainty.detectors.registry import REGISTRY, detector_spec

MACHINERY = ("base", "registry", "config", "fitted", "last_layer")  # the package's modules that are not detectors


def _import_detector_files() -> None:
    """Import every detector file of this package: each registers its class on import, so a new
    detector is one file here (nothing else to edit)."""
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name not in MACHINERY:
            import_module(f"{__package__}.{info.name}")


_import_detector_files()

DETECTORS = ("mahalanobis", "mahalanobis_pp", "rmd", "feature_norm", "knn", "grad_knn", "grad_pca", "exgrad", "vim",
             "react", "odin", "mc_dropout", "doctor", "sirc")  # the default of detectors.use
EXTRA_TARGETS = ("kl_uniform", "bce_ones")


def registered_names() -> tuple[str, ...]:
    """Every registered detector: the built-in ones in their order, then the others as registered."""
    return (*DETECTORS, *(n for n in REGISTRY if n not in DETECTORS))


def _default_params() -> dict[str, dict[str, Any]]:
    return {name: spec.defaults() for name, spec in REGISTRY.items()}


@dataclass(frozen=True)
class DetectorsConfig:
    """Detector choice and parameters (defaults: the built-in detectors, both extra targets).

    ``params``: detector name -> its parameters (every registered detector's, defaults filled in)."""

    use: tuple[str, ...] = setting(DETECTORS, Param("strs", choices=registered_names,
                                                    doc="the detectors scored, each a detector/<name> column"))
    targets: tuple[str, ...] = setting(EXTRA_TARGETS, Param("strs", choices=EXTRA_TARGETS, doc="further gradient "
                                                            "targets, each a grad_<target>/... column group"))
    chunk_size: int = setting(DETECTOR_CHUNK_SIZE, Param(int, min=1, doc="images per batch of the detectors that run the model"))
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=_default_params)
    params_file: str = field(default="params.yaml", compare=False)

    def __post_init__(self) -> None:
        for name in self.use:
            detector_spec(name)
        object.__setattr__(self, "params", {**_default_params(), **{k: {**REGISTRY[k].defaults(), **v}
                                                                    for k, v in self.params.items()}})

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DetectorsConfig:
        """Validate ``params['detectors']``; a bad value is a GradmetaError naming the parameter."""
        r = as_params(params).reader("detectors")
        for moved in ("threads", "device"):  # how the detectors stage runs is its own group: extract does not read it
            if r.has(moved):
                raise r.error(moved, f"moved to detectors_stage.{moved} (the detectors stage's own group, which the "
                                     "extract stages do not read)")
        values = {}
        for name in registered_names():
            group = r.group(name)
            values[name] = {key: p.read(group, key) for key, p in REGISTRY[name].params.items()}
        settings = read_settings(cls, r)
        settings.update({key: tuple(dict.fromkeys(settings[key])) for key in ("use", "targets")})  # each once
        cfg = cls(**settings, params=values, params_file=r.source)
        r.done()
        cfg.check_sizes(None)
        return cfg

    def param(self, detector: str, key: str) -> Any:
        """The value of ``detectors.<detector>.<key>``."""
        return self.params[detector][key]

    def fitted_names(self) -> list[str]:
        """The detectors of ``use`` that are fitted on training features (the detectors stage), in order."""
        return [n for n in self.use if REGISTRY[n].fitted]

    def check_sizes(self, sizes: ModelSizes | None) -> None:
        """Refuse, before any work, what a detector of ``use`` declares impossible for its params on a model and
        train split of ``sizes`` (None: on any; :meth:`Detector.size_problems`, e.g. KNN's ``k`` beyond its
        bank, ViM's ``dim`` leaving no null space). The error names the parameter."""
        for name in self.use:
            for key, problem in REGISTRY[name].cls.size_problems(self.params[name], sizes).items():
                raise GradmetaError(f"{self.params_file}: detectors.{name}.{key} {problem}")

    def to_dict(self) -> dict[str, Any]:
        """The flat record written into the outputs' metadata (what the scores depend on, so neither
        how the stage runs): use, targets, chunk_size, then
        ``<prefix>_<param>`` of every built-in detector (e.g. ``knn_k``, ``mc_passes``) and of every
        other registered detector in ``use``."""
        out: dict[str, Any] = {"use": list(self.use), "targets": list(self.targets), "chunk_size": self.chunk_size}
        for name in (*DETECTORS, *(n for n in self.use if n not in DETECTORS)):  # others only where used
            spec = REGISTRY[name]
            out.update({f"{spec.key_prefix}_{key}": self.params[name][key] for key in spec.params})
        return out
