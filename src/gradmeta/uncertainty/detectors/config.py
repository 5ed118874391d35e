"""The ``detectors`` parameter group: which of the field's detectors become ``detector/<name>``
columns, their parameters, and the further gradient targets (``grad_<target>/...`` column groups)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import as_params

DETECTORS = ("mahalanobis", "knn", "vim", "react", "odin", "mc_dropout")
FITTED = ("mahalanobis", "knn", "vim", "react")  # need state from the known concept's train split
EXTRA_TARGETS = ("kl_uniform", "bce_ones")


@dataclass(frozen=True)
class DetectorsConfig:
    """Detector choice and parameters (defaults: every detector, both extra targets)."""

    use: tuple[str, ...] = DETECTORS
    targets: tuple[str, ...] = EXTRA_TARGETS
    chunk_size: int = 256
    knn_k: int = 10
    knn_bank_size: int | None = 5000   # seeded subsample of the train features; None = all
    knn_seed: int = 0
    vim_dim: int = 128
    react_percentile: float = 90.0
    odin_temperature: float = 1000.0
    odin_epsilon: float = 0.0014
    mc_passes: int = 10
    mc_seed: int = 0
    params_file: str = field(default="params.yaml", compare=False)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DetectorsConfig:
        """Validate ``params['detectors']``; a bad value is a GradmetaError naming the parameter."""
        r = as_params(params).reader("detectors")
        d = cls()
        knn, vim, react, odin, mc = (r.group(k) for k in ("knn", "vim", "react", "odin", "mc_dropout"))
        cfg = cls(
            use=tuple(dict.fromkeys(r.str_list("use", list(d.use), choices=DETECTORS))),
            targets=tuple(dict.fromkeys(r.str_list("targets", list(d.targets), choices=EXTRA_TARGETS))),
            chunk_size=r.int("chunk_size", d.chunk_size, min=1),
            knn_k=knn.int("k", d.knn_k, min=1),
            knn_bank_size=knn.int("bank_size", d.knn_bank_size, min=1, allow_none=True),
            knn_seed=knn.int("seed", d.knn_seed, min=0),
            vim_dim=vim.int("dim", d.vim_dim, min=1),
            react_percentile=react.float("percentile", d.react_percentile, min=0.0, max=100.0, min_exclusive=True),
            odin_temperature=odin.float("temperature", d.odin_temperature, min=0.0, min_exclusive=True),
            odin_epsilon=odin.float("epsilon", d.odin_epsilon, min=0.0),
            mc_passes=mc.int("passes", d.mc_passes, min=2),
            mc_seed=mc.int("seed", d.mc_seed, min=0),
            params_file=r.source,
        )
        r.done()
        if cfg.knn_bank_size is not None and "knn" in cfg.use and cfg.knn_bank_size < cfg.knn_k:
            raise r.error("knn.bank_size", f"must be at least knn.k ({cfg.knn_k}), got {cfg.knn_bank_size}")
        return cfg

    def check_sizes(self, feature_dim: int, train_rows: int) -> None:
        """Refuse, before any fitting, what the sizes make impossible: ViM's ``dim`` must leave a null
        space of the ``feature_dim`` penultimate features, KNN's ``k`` must not exceed its bank (the
        ``train_rows`` images, or ``bank_size`` of them). Errors name the parameter."""
        if "vim" in self.use and not 0 < self.vim_dim < feature_dim:
            raise GradmetaError(f"{self.params_file}: detectors.vim.dim must be in [1, {feature_dim - 1}] (the model's "
                                f"penultimate layer has {feature_dim} features), got {self.vim_dim}")
        bank = train_rows if self.knn_bank_size is None else min(self.knn_bank_size, train_rows)
        if "knn" in self.use and self.knn_k > bank:
            raise GradmetaError(f"{self.params_file}: detectors.knn.k must be at most the {bank} train features in "
                                f"KNN's bank (detectors.knn.bank_size: {self.knn_bank_size}, {train_rows} train "
                                f"images), got {self.knn_k}")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k != "params_file"}
