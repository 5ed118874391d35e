"""The ``data`` parameter group, validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradmeta.core.concepts import UNKNOWN_CONCEPTS
from gradmeta.core.params import ParamReader

SOURCES = ("synthetic", "real")
# Size keys in params.yaml (data.sizes): digits has a train and a test split, unknowns one set each.
SIZE_KEYS = ("digits_train", "digits_test", *UNKNOWN_CONCEPTS)


@dataclass(frozen=True)
class DataConfig:
    """Which source to use and how many images of each concept to prepare (None = all)."""

    source: str = "synthetic"
    seed: int = 0
    sizes: dict[str, int | None] = field(default_factory=dict)
    raw_dir: str = "data/raw"
    mirror: str | None = None
    retries: int = 3
    timeout: float = 30.0
    distortion: float = 1.0
    extra_fonts: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DataConfig:
        """Validate ``params['data']``; an unknown source, size key or a size < 1 is a GradmetaError."""
        data = ParamReader(params.get("data"), "data")
        sizes_reader = data.group("sizes")
        unknown = set(data.raw("sizes", {}) or {}) - set(SIZE_KEYS)
        if unknown:
            raise sizes_reader.fail(min(unknown), f"one of {', '.join(SIZE_KEYS)}", "an unknown key")
        real, synthetic = data.group("real"), data.group("synthetic")
        return cls(
            source=data.str("source", "synthetic", choices=SOURCES),
            seed=data.int("seed", 0, min=0),
            sizes={k: sizes_reader.int(k, None, min=1, allow_none=True) for k in SIZE_KEYS},
            raw_dir=real.str("raw_dir", "data/raw"),
            mirror=real.str("mirror", None, allow_none=True),
            retries=real.int("retries", 3, min=0),
            timeout=real.float("timeout", 30.0, min=0.0, min_exclusive=True),
            distortion=synthetic.float("distortion", 1.0, min=0.0),
            extra_fonts=tuple(synthetic.str_list("extra_fonts", [])),
        )
