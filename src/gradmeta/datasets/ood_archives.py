"""Builders of OpenOOD's near- and far-OOD sets of its CIFAR-10 benchmark from their publishers' archives:
CIFAR-100 (fine labels), SVHN's test set, the Describable Textures, TinyImageNet-200's validation images
(CIFAR-10's classes left out) and Places365's validation images. MNIST is the ``mnist`` source, converted
to the pipeline's geometry like every concept.

Each archive is fetched and verified as every public archive is (:func:`gradmeta.datasets.public.fetch`);
the images a concept takes are its image list's (if any) and a seeded subset of ``test`` of them
(:func:`gradmeta.datasets.selection.choose`); photographs are decoded only once chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradmeta.datasets.assemble import Built, Part
from gradmeta.datasets.cifar10 import read_cifar100
from gradmeta.datasets.members import read_tar_images, read_zip_images
from gradmeta.datasets.photo_archives import list_places365, list_textures, list_tinyimagenet
from gradmeta.datasets.public import fetch, subsample
from gradmeta.datasets.selection import choose
from gradmeta.datasets.svhn import read_svhn

if TYPE_CHECKING:
    from gradmeta.datasets.config import ConceptSpec, DataConfig


def cifar100(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """CIFAR-100 in colour, 32x32 RGB, fine labels 0-99: its train file (the train split) and its test file."""
    records: list[dict] = []
    path = fetch(cfg, "cifar100", records)
    parts = [subsample(spec, cfg, split, *read_cifar100(path, split, verify=False), count, path.name)
             for split, count in spec.split_counts()]
    return Built(parts, {"archives": records, "seed": cfg.seed})


def svhn(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """SVHN's 26,032 cropped test digits, 32x32 RGB, labels 0-9."""
    records: list[dict] = []
    path = fetch(cfg, "svhn_test", records)
    images, labels = read_svhn(path, verify=False)
    return Built([subsample(spec, cfg, "test", images, labels, spec.test, path.name)],
                 {"archives": records, "seed": cfg.seed})


def _photographs(spec: ConceptSpec, cfg: DataConfig, names: list[str], labels, read, path, records) -> Built:
    idx = choose(spec, cfg, "test", len(names), spec.test, lambda: names, path.name)
    images = read(path, [names[i] for i in idx], cfg.geometry.height, cfg.geometry.width)
    return Built([Part("test", images, labels[idx], idx)],
                 {"archives": records, "seed": cfg.seed,
                  "resize": "centre crop to the aspect, then area resize to the pipeline's height and width"})


def textures(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """The Describable Textures Dataset's 5,640 photographs (47 classes)."""
    records: list[dict] = []
    path = fetch(cfg, "dtd", records)
    names, labels = list_textures(path)
    return _photographs(spec, cfg, names, labels, read_tar_images, path, records)


def tinyimagenet(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """TinyImageNet-200's validation images (64x64) of the classes that are not CIFAR-10's."""
    records: list[dict] = []
    path = fetch(cfg, "tinyimagenet", records)
    names, labels = list_tinyimagenet(path)
    return _photographs(spec, cfg, names, labels, read_zip_images, path, records)


def places365(spec: ConceptSpec, cfg: DataConfig) -> Built:
    """Places365's 36,500 validation images (256x256), labelled by its file list with their scene class."""
    records: list[dict] = []
    images = fetch(cfg, "places365_val", records)
    names, labels = list_places365(images, fetch(cfg, "places365_filelist", records))
    return _photographs(spec, cfg, names, labels, read_tar_images, images, records)
