"""Read params.yaml and validate its values, with errors that name the file and parameter at fault.

Every stage reads its own group (``data``, ``train``, ...) through the typed readers here, so a bad
value fails before any work starts with one line such as
``params.yaml: data.sizes.letters must be a positive integer or null, got -3``; a misspelt key is
refused naming the closest valid one (``params.yaml: train.epoch is not a parameter; did you mean
train.epochs?``).
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from gradmeta.core.errors import GradmetaError

MAX_SEED = 2**32 - 1  # numpy's legacy seeding, and so every library seeded from one seed, takes 0..2**32 - 1
MAX_THREADS = 1024  # thread counts (torch, XGBoost, meta fits at once): more than any machine has cores
GROUPS = ("data", "train", "extract", "detectors", "detectors_stage", "meta", "evaluate")  # the top-level groups of params.yaml


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


MAX_REPR = 80  # characters of a found value an error message quotes


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_REPR` characters: an error line stays one short line whatever
    the file held (a long list, a string of megabytes)."""
    text = reprlib_repr(value)
    return text if len(text) <= MAX_REPR else f"{text[:MAX_REPR - 3]}..."


def key_text(key: Any) -> str:
    """A mapping key as an error names it: a string as it is (cut to :data:`MAX_REPR`), anything else shown."""
    return key[:MAX_REPR] if isinstance(key, str) else shown(key)


def reprlib_repr(value: Any) -> str:
    """A repr that never builds more than a few hundred characters, even of a huge or deep value."""
    limits = reprlib.Repr()
    limits.maxlevel, limits.maxstring, limits.maxother = 3, MAX_REPR, MAX_REPR
    limits.maxlist = limits.maxtuple = limits.maxdict = limits.maxset = 8
    return limits.repr(value)


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing what DVC refuses or what can blow up: a key given twice in one
    mapping (PyYAML keeps the last one silently; DVC refuses the file) and anchors and aliases
    (``&a`` / ``*a``: a few lines of aliases can expand to billions of values)."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused("a YAML alias (*name): params files may not use anchors or aliases", event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise _Refused("a YAML anchor (&name): params files may not use anchors or aliases", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise _Refused(f"the key {shown(key)} is given twice in one mapping", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    """A construct :class:`_ParamsLoader` refuses, and where it is."""

    def __init__(self, problem: str, mark: yaml.Mark):
        super().__init__(problem)
        self.problem, self.mark = problem, mark


def read_yaml(path: Path) -> Any:
    """The YAML document at ``path``, read safely (no tags, no anchors or aliases, no key given twice);
    any problem is one :class:`GradmetaError` naming the file and the line."""
    try:
        return yaml.load(path.read_text(), Loader=_ParamsLoader)  # noqa: S506 (a SafeLoader subclass)
    except _Refused as exc:
        raise GradmetaError(f"{path}: {exc.problem} at line {exc.mark.line + 1}, column {exc.mark.column + 1}") from None
    except RecursionError:
        raise GradmetaError(f"{path}: not valid YAML (nested too deeply)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise GradmetaError(f"{path}: not valid YAML{where} ({problem})") from None


def load_params(path: str | os.PathLike[str] = "params.yaml") -> Params:
    """Load a params file; a missing or malformed file, or an unknown top-level group, is a
    :class:`GradmetaError` naming the file (and the line, for a YAML syntax error, a key given twice,
    an anchor or an alias)."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: params file not found")
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise GradmetaError(f"{p}: expected a mapping of parameter groups at the top level")
    for key in data:
        if key not in GROUPS:
            raise unknown_key_error(str(p), key_text(key), GROUPS)
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
            raise GradmetaError(f"{source}: {prefix} must be a mapping, got {shown(values)}")
        self._values = values
        self._prefix = prefix
        self._source = source
        self._asked: list[str] = []
        self._children: dict[str, ParamReader] = {}

    @property
    def source(self) -> str:
        """The params file name, for errors raised outside the reader."""
        return self._source

    def name(self, key: str) -> str:
        """The dotted parameter name of ``key`` within this group."""
        return f"{self._prefix}.{key}" if self._prefix else key

    def fail(self, key: str, expected: str, got: Any) -> GradmetaError:
        """An error naming the parameter, what was expected and what was found."""
        return GradmetaError(f"{self._source}: {self.name(key)} must be {expected}, got {shown(got)}")

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
        """A reader for the nested mapping ``key`` (missing counts as empty); the same one each time asked,
        so every key read through any of them counts as known."""
        if key not in self._children:
            self._children[key] = ParamReader(self.raw(key, None), self.name(key), self._source)
        return self._children[key]

    def done(self) -> None:
        """Refuse keys of this group (and of its nested groups) that no one asked for."""
        for key in self._values:
            if key not in self._asked:
                raise unknown_key_error(self._source, self.name(key_text(key)), self._asked,
                                        f"{self._prefix}." if self._prefix else "")
        for child in self._children.values():
            child.done()

    def int(self, key: str, default: Any = ..., *, min: int | None = None, max: int | None = None,
            allow_none: bool = False) -> int | None:
        value = self.raw(key, default)
        if value is None and allow_none:
            return None
        expected = "an integer" if min is None else ("a positive integer" if min == 1 else f"an integer >= {min}")
        if max is not None:
            expected += f" and <= {max}"
        if allow_none:
            expected += " or null"
        if (isinstance(value, bool) or not isinstance(value, int) or (min is not None and value < min)
                or (max is not None and value > max)):
            raise self.fail(key, expected, value)
        return value

    def seed(self, key: str, default: Any = ...) -> int:
        """A random seed: an integer 0..:data:`MAX_SEED` (the range every library seeded from it takes)."""
        return self.int(key, default, min=0, max=MAX_SEED)

    def threads(self, key: str, default: Any = ...) -> int:
        """A thread count: an integer 1..:data:`MAX_THREADS`."""
        return self.int(key, default, min=1, max=MAX_THREADS)

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


UNSET: Any = object()  # a Param without a default of its own: its constructor argument's is the one
KINDS = (int, float, bool, str, "floats", "strs")


@dataclass(frozen=True)
class Param:
    """One parameter, declared once: its kind (``int``, ``float``, ``bool``, ``str``, ``"floats"``: a
    non-empty list of numbers, ``"strs"``: a list of strings), bounds, the names it takes (``choices``, for
    ``str`` and ``"strs"``), the words it takes besides (``words=("auto",)``), whether it may be null, its
    default and what it is (``doc``, for the README's params table).

    A registered component's Param (a detector's, a meta classifier's) takes its default from the
    component constructor's argument of the same name (:func:`declared_default`) and carries its own only
    where the constructor requires the argument; a params group's Param is a field of its config dataclass
    (:func:`setting`), whose default it is."""

    kind: type | str = int
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    allow_none: bool = False
    words: tuple[str, ...] = ()
    default: Any = UNSET
    choices: tuple[str, ...] | Callable[[], Sequence[str]] | None = None  # a callable: the names registered now
    non_empty: bool = False
    doc: str = ""

    def names(self) -> tuple[str, ...] | None:
        """The names it takes (``choices``, asked now where it is a callable), or None for any."""
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GradmetaError(f"a Param's kind must be one of int, float, bool, str, 'floats', 'strs'; "
                                f"got {self.kind!r}")

    def read(self, reader: ParamReader, key: str) -> Any:
        """The value of ``key`` in ``reader``'s group, checked (a bad one names the parameter)."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        raw = reader.raw(key, default)
        if (isinstance(raw, str) and raw in self.words) or (raw is None and self.allow_none):
            return raw
        words = "".join(f" or {w!r}" for w in self.words)
        if self.kind is int:
            if words and not (isinstance(raw, int) and not isinstance(raw, bool)):
                raise reader.fail(key, f"an integer{words}", raw)
            lo, hi = (None if b is None else int(b) for b in (self.min, self.max))
            return reader.int(key, default, min=lo, max=hi, allow_none=self.allow_none)
        if self.kind is float:
            if words and _as_number(raw) is None:
                raise reader.fail(key, f"a number{words}", raw)
            return reader.float(key, default, min=self.min, max=self.max, min_exclusive=self.min_exclusive,
                                max_exclusive=self.max_exclusive)
        if self.kind is bool:
            return reader.bool(key, default)
        if self.kind is str:
            return reader.str(key, default, choices=self.names(), allow_none=self.allow_none)
        if self.kind == "strs":
            return reader.str_list(key, default, choices=self.names(), non_empty=self.non_empty)
        lo = -math.inf if self.min is None else self.min
        if not isinstance(raw, (list, tuple)) or not raw or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and (v > lo if self.min_exclusive else v >= lo)
                for v in raw):
            bound = "" if self.min is None else f" {'>' if self.min_exclusive else '>='} {self.min:g}"
            raise reader.fail(key, f"a non-empty list of numbers{bound}", raw)
        return [float(v) for v in raw]

    def describe(self) -> str:
        """What values it takes, in a few words (the README's params table): ``integer >= 1``,
        ``number in (0, 1)``, ``one of cpu, cuda``, each with ``or null`` and its words where it takes them."""
        if self.kind in (int, float, "floats"):
            noun = {int: "integer", float: "number", "floats": "list of numbers"}[self.kind]
            def number(v: float) -> str:
                return str(int(v)) if self.kind is int else f"{v:g}"

            lo = None if self.min is None else number(self.min)
            hi = None if self.max is None else number(self.max)
            if lo is not None and hi is not None:
                text = f"{noun} in {'(' if self.min_exclusive else '['}{lo}, {hi}{')' if self.max_exclusive else ']'}"
            elif lo is not None:
                text = f"{noun} {'>' if self.min_exclusive else '>='} {lo}"
            elif hi is not None:
                text = f"{noun} {'<' if self.max_exclusive else '<='} {hi}"
            else:
                text = noun
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = f"one of {', '.join(self.names())}" if self.choices is not None else "string"
        else:
            of = f" of {', '.join(self.names())}" if self.choices is not None else " of strings"
            text = f"{'non-empty ' if self.non_empty else ''}list{of}"
        return text + "".join(f" or {w!r}" for w in self.words) + (" or null" if self.allow_none else "")


def seed_param(doc: str = "") -> Param:
    """A random seed: an integer 0..:data:`MAX_SEED` (the range every library seeded from it takes)."""
    return Param(int, min=0, max=MAX_SEED, doc=doc)


def threads_param(doc: str = "") -> Param:
    """A thread count: an integer 1..:data:`MAX_THREADS`."""
    return Param(int, min=1, max=MAX_THREADS, doc=doc)


PARAM_KEY = "gradmeta.param"  # a dataclass field's metadata: its Param
PATH_KEY = "gradmeta.key"  # ... and its key in the group, where that is not the field's name ("real.timeout")


def setting(default: Any, param: Param, *, key: str | None = None) -> Any:
    """A field of a params group's config dataclass that is one parameter, declared once: its default (the
    dataclass's, which the library's callers get too, and the pipeline's when params.yaml leaves the key
    out), its kind and bounds (``param``), and its key in the group (the field's name, or a dotted path
    into a nested group, ``"real.timeout"``). :func:`read_settings` reads every such field; the README's
    params table lists them (:mod:`gradmeta.params_table`)."""
    if param.default is not UNSET:
        raise GradmetaError(f"setting {key or ''}: the default is the field's ({default!r}); the Param has its own "
                            f"({param.default!r})")
    metadata = {PARAM_KEY: replace(param, default=default), PATH_KEY: key}
    return field(default=default, metadata=metadata)


def declared_settings(cls: type) -> list[tuple[str, Field, Param]]:
    """(key in the group, field, Param) of every :func:`setting` field of the dataclass ``cls``, in order."""
    return [(f.metadata[PATH_KEY] or f.name, f, f.metadata[PARAM_KEY]) for f in fields(cls) if PARAM_KEY in f.metadata]


def read_settings(cls: type, reader: ParamReader) -> dict[str, Any]:
    """field name -> value of every :func:`setting` field of ``cls``, read from ``reader``'s group as its
    Param declares (a list where the field's default is a tuple becomes a tuple)."""
    values = {}
    for key, f, param in declared_settings(cls):
        *path, last = key.split(".")
        group = reader
        for name in path:
            group = group.group(name)
        value = param.read(group, last)
        values[f.name] = tuple(value) if isinstance(f.default, tuple) and isinstance(value, list) else value
    return values


def registered_name(kind: str, name: str, taken_by: object | None, new: object) -> str:
    """``name`` for a registry of ``kind`` (``detector``, ``meta classifier``, ``measure``): a params.yaml key and
    a column name, so letters, digits and ``_``, starting with a letter; ``taken_by`` the object registered
    under it already (None if free), ``new`` the one to register: another one is an error, the same one
    again (a module imported twice) is not."""
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise GradmetaError(f"{kind} name must be letters, digits and '_', starting with a letter, got {name!r}")
    if taken_by is not None and taken_by.__qualname__ != new.__qualname__:
        raise GradmetaError(f"{kind} {name!r} is already registered ({taken_by.__qualname__})")
    return name


def declared_default(owner: str, cls: type, key: str, param: Param) -> Param:
    """``param`` with its default: the argument ``key`` of ``cls``'s constructor gives it, declared there
    once. A Param may carry its own only where the constructor requires the argument; both, or neither, and
    a parameter that is no argument, are errors naming ``owner`` (e.g. ``detector 'knn'``)."""
    argument = inspect.signature(cls.__init__).parameters.get(key)
    if argument is None:
        raise GradmetaError(f"{owner}: parameter {key!r} is not an argument of {cls.__name__}()")
    has_own = argument.default is not inspect.Parameter.empty
    if has_own and param.default is not UNSET:
        raise GradmetaError(f"{owner}: the default of {key!r} is declared twice ({cls.__name__}() has "
                            f"{argument.default!r}, its Param {param.default!r}); keep the constructor's")
    if not has_own and param.default is UNSET:
        raise GradmetaError(f"{owner}: parameter {key!r} has no default ({cls.__name__}() requires it); "
                            "give its Param one")
    return param if not has_own else replace(param, default=argument.default)
