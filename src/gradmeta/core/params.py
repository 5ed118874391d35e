"""Read params.yaml and validate its values, with errors that name the parameter at fault.

Every stage reads its own group (``data``, ``train``, ...) through the typed readers here, so a bad
value fails before any work starts with one line such as
``params.yaml: data.sizes.letters must be a positive integer or null, got -3``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gradmeta.core.errors import GradmetaError


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """Load a params file as a dict; a missing or malformed file is a :class:`GradmetaError`."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: params file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise GradmetaError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GradmetaError(f"{p}: expected a mapping of parameter groups at the top level")
    return data


class ParamReader:
    """Typed, validated access to one group of a params mapping (``reader.int("epochs", min=1)``)."""

    def __init__(self, values: Mapping[str, Any] | None, prefix: str, source: str = "params.yaml"):
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise GradmetaError(f"{source}: {prefix} must be a mapping, got {type(values).__name__}")
        self._values = values
        self._prefix = prefix
        self._source = source

    def name(self, key: str) -> str:
        """The dotted parameter name of ``key`` within this group."""
        return f"{self._prefix}.{key}" if self._prefix else key

    def fail(self, key: str, expected: str, got: Any) -> GradmetaError:
        """An error naming the parameter, what was expected and what was found."""
        return GradmetaError(f"{self._source}: {self.name(key)} must be {expected}, got {got!r}")

    def raw(self, key: str, default: Any = ...) -> Any:
        if key not in self._values:
            if default is ...:
                raise GradmetaError(f"{self._source}: {self.name(key)} is missing")
            return default
        return self._values[key]

    def group(self, key: str) -> ParamReader:
        """A reader for the nested mapping ``key`` (missing counts as empty)."""
        return ParamReader(self._values.get(key), self.name(key), self._source)

    def int(self, key: str, default: Any = ..., *, min: int | None = None, allow_none: bool = False) -> int | None:
        value = self.raw(key, default)
        if value is None and allow_none:
            return None
        expected = "an integer" if min is None else ("a positive integer" if min == 1 else f"an integer >= {min}")
        if allow_none:
            expected += " or null"
        if isinstance(value, bool) or not isinstance(value, int) or (min is not None and value < min):
            raise self.fail(key, expected, value)
        return value

    def float(self, key: str, default: Any = ..., *, min: float | None = None, max: float | None = None,
              min_exclusive: bool = False, max_exclusive: bool = False) -> float:
        value = self.raw(key, default)
        lo = "" if min is None else f"{'>' if min_exclusive else '>='} {min}"
        hi = "" if max is None else f"{'<' if max_exclusive else '<='} {max}"
        expected = "a number" + (f" {lo}" if lo else "") + (" and" if lo and hi else "") + (f" {hi}" if hi else "")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, expected, value)
        value = float(value)
        if min is not None and (value < min or (min_exclusive and value == min)):
            raise self.fail(key, expected, value)
        if max is not None and (value > max or (max_exclusive and value == max)):
            raise self.fail(key, expected, value)
        return value

    def str(self, key: str, default: Any = ..., *, choices: Sequence[str] | None = None, allow_none: bool = False) -> str | None:
        value = self.raw(key, default)
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or (choices is not None and value not in choices):
            expected = f"one of {', '.join(choices)}" if choices is not None else "a string"
            raise self.fail(key, expected, value)
        return value

    def bool(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def str_list(self, key: str, default: Any = ..., *, choices: Sequence[str] | None = None) -> list[str]:
        value = self.raw(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings", value)
        if choices is not None:
            for v in value:
                if v not in choices:
                    raise self.fail(key, f"a list of names from {', '.join(choices)}", v)
        return list(value)

    def int_list(self, key: str, default: Any = ..., *, min: int = 1) -> list[int]:
        value = self.raw(key, default)
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= min for v in value)):
            raise self.fail(key, f"a non-empty list of integers >= {min}", value)
        return list(value)
