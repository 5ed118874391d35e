"""Read params.yaml and validate its values, with errors that name the file and parameter at fault.

Every stage reads its own group (``data``, ``train``, ...) through the typed readers here, so a bad
value fails before any work starts with one line such as
``params.yaml: data.sizes.letters must be a positive integer or null, got -3``; a misspelt key is
refused naming the closest valid one (``params.yaml: train.epoch is not a parameter; did you mean
train.epochs?``).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gradmeta.core.errors import GradmetaError

GROUPS = ("data", "train", "extract", "detectors", "meta", "evaluate")  # the top-level groups of params.yaml


class Params(dict):
    """The params mapping, remembering the file it came from (``source``) for error messages."""

    source: str = "params.yaml"

    def reader(self, group: str) -> ParamReader:
        """A reader for one top-level group (missing counts as empty)."""
        return ParamReader(self.get(group), group, self.source)


def as_params(params: Mapping[str, Any], source: str | None = None) -> Params:
    """``params`` as :class:`Params` (a plain dict gets the source ``params.yaml``)."""
    if isinstance(params, Params) and source is None:
        return params
    out = Params(params)
    out.source = source or getattr(params, "source", "params.yaml")
    return out


def unknown_key_error(source: str, name: str, valid: Sequence[str], prefix: str = "") -> GradmetaError:
    """'<source>: <name> is not a parameter; did you mean <closest>?' (or the list of valid keys)."""
    key = name.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"expected one of {', '.join(valid)}"
    return GradmetaError(f"{source}: {name} is not a parameter; {hint}")


def load_params(path: str | os.PathLike[str] = "params.yaml") -> Params:
    """Load a params file; a missing or malformed file, or an unknown top-level group, is a
    :class:`GradmetaError` naming the file (and the line, for a YAML syntax error)."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: params file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise GradmetaError(f"{p}: not valid YAML{where} ({problem})") from None
    if not isinstance(data, dict):
        raise GradmetaError(f"{p}: expected a mapping of parameter groups at the top level")
    for key in data:
        if key not in GROUPS:
            raise unknown_key_error(str(p), str(key), GROUPS)
    return as_params(data, str(p))


class ParamReader:
    """Typed, validated access to one group of a params mapping (``reader.int("epochs", min=1)``).

    Every key a reader is asked for counts as known; :meth:`done` then refuses any other key of the
    group (and of the groups read through :meth:`group`), naming the closest known one.
    """

    def __init__(self, values: Mapping[str, Any] | None, prefix: str, source: str = "params.yaml"):
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise GradmetaError(f"{source}: {prefix} must be a mapping, got {type(values).__name__}")
        self._values = values
        self._prefix = prefix
        self._source = source
        self._asked: list[str] = []
        self._children: list[ParamReader] = []

    @property
    def source(self) -> str:
        """The params file name, for errors raised outside the reader."""
        return self._source

    def name(self, key: str) -> str:
        """The dotted parameter name of ``key`` within this group."""
        return f"{self._prefix}.{key}" if self._prefix else key

    def fail(self, key: str, expected: str, got: Any) -> GradmetaError:
        """An error naming the parameter, what was expected and what was found."""
        return GradmetaError(f"{self._source}: {self.name(key)} must be {expected}, got {got!r}")

    def error(self, key: str, message: str) -> GradmetaError:
        """An error ``<source>: <group>.<key>: <message>``."""
        return GradmetaError(f"{self._source}: {self.name(key)}: {message}")

    def raw(self, key: str, default: Any = ...) -> Any:
        if key not in self._asked:
            self._asked.append(key)
        if key not in self._values:
            if default is ...:
                raise GradmetaError(f"{self._source}: {self.name(key)} is missing")
            return default
        return self._values[key]

    def keys(self) -> list[str]:
        """The keys the group sets, in file order."""
        return [str(k) for k in self._values]

    def has(self, key: str) -> bool:
        """Whether the group sets ``key`` (asking does not count as reading it)."""
        return key in self._values

    def group(self, key: str) -> ParamReader:
        """A reader for the nested mapping ``key`` (missing counts as empty)."""
        child = ParamReader(self.raw(key, None), self.name(key), self._source)
        self._children.append(child)
        return child

    def done(self) -> None:
        """Refuse keys of this group (and of its nested groups) that no one asked for."""
        for key in self._values:
            if key not in self._asked:
                raise unknown_key_error(self._source, self.name(str(key)), self._asked,
                                        f"{self._prefix}." if self._prefix else "")
        for child in self._children:
            child.done()

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
        """A number; a string that spells one (PyYAML reads ``2e-3`` as a string) is accepted."""
        value = self.raw(key, default)
        lo = "" if min is None else f"{'>' if min_exclusive else '>='} {min}"
        hi = "" if max is None else f"{'<' if max_exclusive else '<='} {max}"
        expected = "a number" + (f" {lo}" if lo else "") + (" and" if lo and hi else "") + (f" {hi}" if hi else "")
        number = _as_number(value)
        if number is None:
            raise self.fail(key, expected, value)
        too_low = min is not None and (number < min or (min_exclusive and number == min))
        too_high = max is not None and (number > max or (max_exclusive and number == max))
        if too_low or too_high:
            raise self.fail(key, expected, number)
        return number

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

    def str_list(self, key: str, default: Any = ..., *, choices: Sequence[str] | None = None,
                 non_empty: bool = False) -> list[str]:
        value = self.raw(key, default)
        kind = "a non-empty list of strings" if non_empty else "a list of strings"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (non_empty and not value):
            raise self.fail(key, kind, value)
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


def _as_number(value: Any) -> float | None:
    """``value`` as a finite float if it is a number or a string spelling one, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
