"""The report's data section: one line per concept saying what its images are and where they came from.

Read from the features files' metadata (which the extract stage copies from the prepared files), so
the report describes exactly the data its numbers were computed on. A run that mixes real archives,
synthetic stand-ins, generated noise and user data says so, concept by concept.
"""

from __future__ import annotations

from typing import Any

from gradmeta.core.concepts import KIND_WORDS
from gradmeta.core.kernels import NATIVE, PINNED, kernels_mode

DATA_START = "<!-- data:start -->"
DATA_END = "<!-- data:end -->"


def _details(kind: str, prov: dict[str, Any]) -> str:
    if kind == "archive":
        files = ", ".join(f"`{a.get('file')}` (md5 {a.get('md5')})" for a in prov.get("archives", []))
        return f"{files}; subsample seed {prov.get('seed')}"
    if kind == "user":
        user = prov.get("user_data", {})
        digest = str(user.get("sha256", "?"))  # of the file, or of the lines '<sha256>  <name>' of several files
        return f"`{user.get('path')}` ({user.get('format')}), sha256 {digest[:16]}…; split seed {prov.get('seed')}"
    return f"{prov.get('generator', '?')}, seed {prov.get('seed')}"


def concept_line(concept: str, meta: dict[str, Any], known: str) -> str:
    """``- `name` (known): KIND — description; details`` for one concept's features metadata."""
    kind = meta.get("kind", "?")
    prov = meta.get("provenance", {})
    role = " (known)" if concept == known else ""
    return (f"- `{concept}`{role}: {KIND_WORDS.get(kind, kind)} — {prov.get('description', meta.get('source', '?'))}; "
            f"{_details(kind, prov)}")


def data_section(metas: dict[str, dict[str, Any]], known: str) -> list[str]:
    """The banner (which concepts are of which kind) and one line per concept, between markers."""
    by_kind: dict[str, list[str]] = {}
    for concept, meta in metas.items():
        by_kind.setdefault(meta.get("kind", "?"), []).append(f"`{concept}`")
    summary = "; ".join(f"{KIND_WORDS.get(k, k)}: {', '.join(v)}" for k, v in by_kind.items())
    banner = f"**Data:** {summary}."
    if "synthetic" in by_kind:
        banner += (" Results on SYNTHETIC stand-ins show that the method works, not the values of the data "
                   "sets they stand in for.")
    model = model_line(metas.get(known, {}))
    return [DATA_START, banner, "", *[concept_line(c, m, known) for c, m in metas.items()], "",
            *([model, ""] if model else []), kernels_line(metas), DATA_END]


def model_line(meta: dict[str, Any]) -> str:
    """The model's line when it is not the paper's CNN trained by the pipeline: its zoo architecture, and the
    user's trained weights (path and sha256; nothing trained) it was loaded from."""
    model = meta.get("model")
    if not isinstance(model, dict):
        return ""
    checkpoint = model.get("checkpoint")
    weights = (f"your own trained weights `{checkpoint.get('path')}` (sha256 {str(checkpoint.get('sha256'))[:16]}...), "
               "nothing trained by the pipeline" if isinstance(checkpoint, dict) else "trained by the pipeline")
    return f"**Model:** `{model.get('kind')}`, {weights}."


def kernels_line(metas: dict[str, dict[str, Any]]) -> str:
    """Whether the numbers can be the same bytes on another CPU: the kernels every extract process and this
    (the evaluating) process ran, as :mod:`gradmeta.core.kernels` words them."""
    native = sorted(c for c, m in metas.items() if m.get("kernels") != PINNED)
    if kernels_mode() != PINNED:
        native.append("evaluate")
    if native:
        return f"**Kernels:** {NATIVE} (in: {', '.join(native)})."
    return f"**Kernels:** {PINNED}."
