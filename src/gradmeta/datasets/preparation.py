"""From concept name to prepared data: the one place that knows how a concept is made."""

from __future__ import annotations

import numpy as np

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.assemble import Built
from gradmeta.datasets.config import ConceptSpec, DataConfig
from gradmeta.datasets.imageops import to_geometry
from gradmeta.datasets.sources import known_sources, resolve_source
from gradmeta.datasets.user import build_user
from gradmeta.geometry import Geometry
from gradmeta.prepared import PreparedData


def describe(spec: ConceptSpec, cfg: DataConfig) -> tuple[str, str, str]:
    """(source name, kind, one-line description) of what ``spec`` is built from under ``cfg``."""
    if spec.is_user:
        return spec.source, "user", f"your own data ({spec.source} at {spec.path})"
    info = resolve_source(spec.source, cfg.source, f"data.concepts.{spec.name}.source", cfg.params_file)
    named = known_sources()[spec.source]
    text = info.title if info is named else f"{info.title}, standing in for {named.title} (data.source: synthetic)"
    return info.name, info.kind, text


def _assemble(spec: ConceptSpec, source: str, kind: str, built: Built, geometry: Geometry) -> PreparedData:
    """The concept's parts as one prepared file, every image in the pipeline's ``geometry``
    (:func:`gradmeta.datasets.imageops.to_geometry`; a no-op for images already in it)."""
    parts = built.parts
    return PreparedData(
        spec.name, source, kind,
        images=np.concatenate([to_geometry(p.images, geometry) for p in parts]),
        labels=np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in parts]),
        split=np.concatenate([np.full(len(p.images), p.split) for p in parts]),
        source_index=np.concatenate([np.asarray(p.source_index, dtype=np.int64) for p in parts]),
        provenance=built.provenance,
    )


def prepare_concept(concept: str, cfg: DataConfig) -> PreparedData:
    """Prepared images of ``concept`` as ``cfg`` defines it, in ``cfg.geometry``; an undefined concept is a
    GradmetaError."""
    spec = cfg.concepts.get(concept)
    if spec is None:
        raise GradmetaError(f"{cfg.params_file}: no concept {concept!r} in data.concepts or data.user_concepts "
                            f"(defined: {', '.join(cfg.concepts) or 'none'})")
    source, kind, text = describe(spec, cfg)
    built = build_user(spec, cfg) if spec.is_user else known_sources()[source].build(spec, cfg)
    built.provenance = {"description": text, **built.provenance}
    return _assemble(spec, source, kind, built, cfg.geometry)
