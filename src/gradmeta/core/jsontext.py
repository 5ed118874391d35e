"""JSON text from a file gradmeta wrote (a manifest, metadata, provenance), read so that a damaged or
hostile one is one error line: not JSON, not the object expected, or nested deeper than any gradmeta
writes (Python's parser would recurse until a RecursionError)."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from gradmeta.core.errors import GradmetaError

MAX_DEPTH = 32  # nesting of brackets and braces; what gradmeta writes nests at most 5 deep
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_OPENERS, _CLOSERS = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets inside strings not counted); linear in
    the text, no recursion."""
    codes = np.frombuffer(_STRING.sub('""', text).encode("utf-8", "replace"), dtype=np.uint8)
    steps = np.isin(codes, _OPENERS).astype(np.int64) - np.isin(codes, _CLOSERS)
    return int(np.cumsum(steps).max(initial=0))


def json_object(text: str, where: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object (a dict); anything else, or nesting deeper than :data:`MAX_DEPTH`, is a
    :class:`GradmetaError` ``<where>: ...``."""
    if nesting_depth(text) > MAX_DEPTH:
        raise GradmetaError(f"{where}: JSON nested more than {MAX_DEPTH} deep (not written by gradmeta)")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise GradmetaError(f"{where}: not JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(value, dict):
        raise GradmetaError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value
