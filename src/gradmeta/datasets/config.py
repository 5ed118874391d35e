"""The ``data`` parameter group, validated: the concepts, their sources and sizes, where archives live.

``data.concepts`` maps a concept name to a built-in source (:mod:`gradmeta.datasets.sources`) and
its sizes; ``data.user_concepts`` maps a name to the user's own files (``format: npz | idx | folder``
and ``path``). Sizes: ``test`` = images the concept is evaluated on (null = all the source has),
``train`` = images of its train split (only a concept that has one; the known concept needs it).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from gradmeta.core.concepts import concept_names
from gradmeta.core.params import Param, ParamReader, as_params, read_settings, seed_param, setting, threads_param
from gradmeta.datasets.sources import USER_FORMATS, known_sources, resolve_source
from gradmeta.geometry import CHANNELS, DEFAULT, MAX_SIDE, Geometry

MODES = ("synthetic", "real")
NO_TRAIN = 0  # ConceptSpec.train when the concept has no train split (a count is >= 1, None = all)
# data.concepts when a params file has neither data.concepts nor data.user_concepts: the paper's concepts
DEFAULT_CONCEPTS = {
    "digits": {"source": "emnist_digits", "train": 20000, "test": 5000},
    "letters": {"source": "emnist_letters", "test": 2000},
    "omniglot": {"source": "omniglot", "test": 2000},
    "cifar10": {"source": "cifar10_grey", "test": 2000},
    "noise": {"source": "uniform_noise", "test": 2000},
}


def default_raw_dir() -> Path:
    """The per-user archive cache: ``$XDG_CACHE_HOME/gradmeta`` (``~/.cache/gradmeta`` when unset).

    Outside the workspace, so the temporary copies that ``dvc exp run --queue`` works in share it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gradmeta"


@dataclass(frozen=True)
class ConceptSpec:
    """One concept: its source (built-in name or user format), sizes and, for user data, its files."""

    name: str
    source: str
    test: int | None = None         # None = every image the source has
    train: int | None = NO_TRAIN    # NO_TRAIN = no train split; None = all
    path: str | None = None         # user data: the file or folder
    invert: bool = False            # user data: black-on-white drawings become white on black
    outside_repo: bool = False      # user data: the path may be absolute or lead out of the repository
    image_list: str | None = None   # built-in archives: the test images an OpenOOD-style list names (user_data/image_lists/)

    @property
    def is_user(self) -> bool:
        return self.source in USER_FORMATS

    @property
    def has_train(self) -> bool:
        return self.train != NO_TRAIN

    def split_counts(self) -> list[tuple[str, int | None]]:
        """(split, count) to prepare, in order: train first when the concept has one, then test."""
        return [*([("train", self.train)] if self.has_train else []), ("test", self.test)]


@dataclass(frozen=True)
class DataConfig:
    """The concepts to prepare and how: ``source`` = synthetic replaces every public archive by its
    offline stand-in, real reads the archives."""

    source: str = setting("synthetic", Param(str, choices=MODES, doc="synthetic: every public archive replaced by "
                                             "its offline stand-in; real: the archives"))
    seed: int = setting(0, seed_param("the stand-ins' images and every concept's sample"))
    threads: int = setting(2, threads_param("torch threads of the image generation and conversion"))
    known: str = "digits"
    concepts: dict[str, ConceptSpec] = field(default_factory=dict)
    raw_dir: str | None = setting(None, Param(str, allow_none=True, doc="where verified archives are cached (null: "
                                              "$XDG_CACHE_HOME/gradmeta)"), key="real.raw_dir")
    mirror: str | None = setting(None, Param(str, allow_none=True, doc="a base URL (http, https or file) to fetch "
                                             "the archives from instead of their homes"), key="real.mirror")
    retries: int = setting(3, Param(int, min=0, doc="further tries of a failed download"), key="real.retries")
    timeout: float = setting(30.0, Param(float, min=0.0, min_exclusive=True, doc="seconds a download may stall"),
                             key="real.timeout")
    distortion: float = setting(1.0, Param(float, min=0.0, doc="scale of the stand-in glyphs' random affine, "
                                           "elastic and stroke deformations (1.0: calibrated)"), key="synthetic.distortion")
    extra_fonts: tuple[str, ...] = setting((), Param("strs", doc=".ttf files the stand-in glyphs are rendered "
                                                     "in besides matplotlib's fonts"), key="synthetic.extra_fonts")
    geometry: Geometry = DEFAULT  # every concept's images: data.image, else the known concept's native geometry
    params_file: str = field(default="params.yaml", compare=False)  # named in errors raised later

    OTHER_PARAMS: ClassVar[dict[str, str]] = {
        "known": "the concept the CNN learns (it needs a train split; default: the first concept)",
        "concepts": "name -> {source, test, train, image_list}: built-in concepts (see Concepts)",
        "user_concepts": "name -> {format: npz, idx or folder, path, test, train, invert, outside_repo}: your own "
                         "data (see Your own data as a concept)",
        "image": "{size: [H, W], channels: 1 or 3}: every concept's images (null: the known concept's own)"}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DataConfig:
        """Validate ``params['data']``; a bad key or value is a GradmetaError naming it."""
        params = as_params(params)
        data = params.reader("data")
        if data.has("sizes"):
            raise data.error("sizes", "sizes are now per concept: data.concepts.<name>.test (and .train for the "
                             "known concept); see params.yaml")
        names = concept_names(params)
        settings = read_settings(cls, data)
        _check_mirror(data.group("real"), settings["mirror"])
        default = data.raw("concepts", None) is None and data.raw("user_concepts", None) is None
        builtin = ParamReader(DEFAULT_CONCEPTS, "data.concepts", data.source) if default else data.group("concepts")
        user = data.group("user_concepts")
        concepts = {name: _builtin_concept(builtin.group(name), name, settings["source"]) for name in builtin.keys()}
        concepts.update({name: _user_concept(user.group(name), name) for name in user.keys()})
        cfg = cls(**settings, known=data.str("known", names.known), concepts=concepts, params_file=data.source)
        cfg = replace(cfg, geometry=_geometry(data, cfg))
        data.done()
        _check_known(data, cfg)
        return cfg

    @property
    def archive_dir(self) -> Path:
        """Where verified archives are cached: ``data.real.raw_dir``, else :func:`default_raw_dir`."""
        return Path(self.raw_dir) if self.raw_dir else default_raw_dir()


def _sizes(r: ParamReader) -> dict[str, Any]:
    train = r.int("train", None, min=1, allow_none=True) if r.has("train") else NO_TRAIN
    return {"test": r.int("test", None, min=1, allow_none=True), "train": train}


def _builtin_concept(r: ParamReader, name: str, mode: str) -> ConceptSpec:
    source = r.str("source", choices=tuple(known_sources()))
    spec = ConceptSpec(name=name, source=source, image_list=r.str("image_list", None, allow_none=True), **_sizes(r))
    r.done()  # a misspelt key first: it may be why a value seems missing
    named, info = known_sources()[source], resolve_source(spec.source, mode, r.name("source"), r.source)
    if spec.image_list is not None and not info.takes_lists:
        why = ("a stand-in has its own images (set data.source: real to read the archive, or image_list: null)"
               if info is not named else "it reads no image list")
        raise r.error("image_list", f"{info.title} takes no image list: {why}")
    if spec.has_train and not (named.has_train and info.has_train):
        raise r.error("train", f"{named.title} has no train split (only test images)")
    if info.kind in ("synthetic", "generated") and (spec.test is None or spec.train is None):
        key = "test" if spec.test is None else "train"
        raise r.error(key, f"must be a number: {info.title} is generated (null means 'all', which only "
                      "an archive or your own data has)")
    return spec


def _user_concept(r: ParamReader, name: str) -> ConceptSpec:
    fmt = r.str("format", choices=USER_FORMATS)
    spec = ConceptSpec(name=name, source=fmt, path=r.str("path"), invert=r.bool("invert", False),
                       outside_repo=r.bool("outside_repo", False), **_sizes(r))
    r.done()
    if spec.train is None:
        raise r.fail("train", "a number (how many images to train on; the rest form the test split)", None)
    return spec


def _check_known(data: ParamReader, cfg: DataConfig) -> None:
    spec = cfg.concepts[cfg.known]
    if not spec.has_train:
        raise data.error("known", f"the known concept {cfg.known!r} needs train images "
                         f"(data.{'user_concepts' if spec.is_user else 'concepts'}.{cfg.known}.train)")
    if not spec.is_user:
        info = resolve_source(spec.source, cfg.source, f"data.concepts.{cfg.known}.source", cfg.params_file)
        if not info.labelled:
            raise data.error("known", f"the known concept {cfg.known!r} has no labels ({info.title}); "
                             "name a concept with labels")


def _geometry(data: ParamReader, cfg: DataConfig) -> Geometry:
    """``data.image`` (``{size: [H, W], channels: 1 | 3}``), else the native geometry of the known concept's
    source (a user concept's: 28x28 grey, the paper's)."""
    if data.raw("image", None) is None:
        spec = cfg.concepts.get(cfg.known)
        if spec is None or spec.is_user:
            return DEFAULT
        return resolve_source(spec.source, cfg.source, f"data.concepts.{cfg.known}.source", cfg.params_file).geometry
    image = data.group("image")
    size = image.int_list("size")
    if len(size) != 2 or max(size) > MAX_SIDE:
        raise image.fail("size", f"[height, width], each 1..{MAX_SIDE}", size)
    channels = image.int("channels", min=1, max=3)
    if channels not in CHANNELS:
        raise image.fail("channels", "1 (grey) or 3 (RGB)", channels)
    return Geometry(size[0], size[1], channels)


def _check_mirror(real: ParamReader, value: str | None) -> None:
    """``data.real.mirror``: null or an http(s):// or file:// base URL."""
    if value is not None:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
            raise real.fail("mirror", "null or a base URL such as https://host/path/ (http, https or file)", value)
