"""The ``data`` parameter group, validated."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from gradmeta.core.concepts import UNKNOWN_CONCEPTS
from gradmeta.core.params import ParamReader, as_params

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
    params_file: str = field(default="params.yaml", compare=False)  # named in errors raised later

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DataConfig:
        """Validate ``params['data']``; an unknown source, size key or a size < 1 is a GradmetaError."""
        data = as_params(params).reader("data")
        sizes_reader = data.group("sizes")
        real, synthetic = data.group("real"), data.group("synthetic")
        cfg = cls(
            source=data.str("source", "synthetic", choices=SOURCES),
            seed=data.int("seed", 0, min=0),
            sizes={k: sizes_reader.int(k, None, min=1, allow_none=True) for k in SIZE_KEYS},
            raw_dir=real.str("raw_dir", "data/raw"),
            mirror=_mirror(real),
            retries=real.int("retries", 3, min=0),
            timeout=real.float("timeout", 30.0, min=0.0, min_exclusive=True),
            distortion=synthetic.float("distortion", 1.0, min=0.0),
            extra_fonts=tuple(synthetic.str_list("extra_fonts", [])),
            params_file=data.source,
        )
        data.done()
        return cfg


def _mirror(real: ParamReader) -> str | None:
    """``data.real.mirror``: null or an http(s):// or file:// base URL."""
    value = real.str("mirror", None, allow_none=True)
    if value is not None:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
            raise real.fail("mirror", "null or a base URL such as https://host/path/ (http, https or file)", value)
    return value
