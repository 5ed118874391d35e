"""The concepts of a run, read from ``params.yaml: data``: which one the CNN learns, which are unknown.

Concepts are named in ``data.concepts`` (built-in sources) and ``data.user_concepts`` (the user's own
files); ``data.known`` names the known concept. Every stage that lists concepts reads them here, so
adding a concept to params.yaml is all it takes. A name becomes part of DVC stage names
(``extract@<name>``) and of file names, so it is restricted to lower-case letters, digits and ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gradmeta.core.params import ParamReader, as_params

IMAGE_SIZE = 28
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
NAME_RULE = "a lower-case letter, then up to 39 lower-case letters, digits or '_'"
DEFAULT_KNOWN = "digits"
# The paper's concepts: what a params file without data.concepts and data.user_concepts means.
PAPER_CONCEPTS = ("digits", "letters", "omniglot", "cifar10", "noise")


@dataclass(frozen=True)
class Concepts:
    """The known concept and the unknown ones, in params order (built-in first, then the user's)."""

    known: str
    unknowns: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Known first, then the unknowns."""
        return (self.known, *self.unknowns)


def check_concept_name(reader: ParamReader, key: str, name: Any) -> str:
    """``name`` if it is a valid concept name, else a GradmetaError naming ``<group>.<key>``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise reader.error(key, f"concept name {name!r} must be {NAME_RULE} (it names DVC stages and files)")
    return name


def concept_names(params: dict[str, Any]) -> Concepts:
    """The concepts of ``params['data']``: names checked, unique across both mappings, known among them.

    Only the names are read here (the datasets package validates each concept's source)."""
    data = as_params(params).reader("data")
    if data.raw("concepts", None) is None and data.raw("user_concepts", None) is None:
        known = data.str("known", DEFAULT_KNOWN, choices=PAPER_CONCEPTS)
        return Concepts(known, tuple(c for c in PAPER_CONCEPTS if c != known))
    names: list[str] = []
    for group in ("concepts", "user_concepts"):
        mapping = data.raw(group, {}) or {}
        if not isinstance(mapping, dict):
            raise data.fail(group, "a mapping of concept name to its source", mapping)
        for name in mapping:
            check_concept_name(data, f"{group}.{name}", name)
            if name in names:
                raise data.error(f"{group}.{name}", "this concept is already defined in data.concepts")
            names.append(name)
    if not names:
        raise data.error("concepts", "no concepts defined")
    known = data.str("known", DEFAULT_KNOWN)
    if known not in names:
        raise data.fail("known", f"one of the concepts ({', '.join(names)})", known)
    return Concepts(known, tuple(n for n in names if n != known))
