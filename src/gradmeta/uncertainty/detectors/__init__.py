"""The field's post-hoc detectors, one file each with its formula and paper: Mahalanobis, KNN, ViM and
ReAct (fitted on penultimate features), ODIN, MC dropout and GradNorm (on the model), all on one protocol
(:class:`Detector`: ``fit``, ``score``, ``predict``, ``columns``, ``state``/``from_state``) and
registered by name (:func:`register_detector`). ``predict*`` return outlier scores (pytorch-ood's
sign); ``score*`` gradmeta's (higher = in-distribution)."""

from gradmeta.uncertainty.detectors.base import Detector, FeatureDetector, SharedFeatures, logits_layer, penultimate
from gradmeta.uncertainty.detectors.gradnorm import GradNorm
from gradmeta.uncertainty.detectors.knn import KNN
from gradmeta.uncertainty.detectors.mahalanobis import Mahalanobis
from gradmeta.uncertainty.detectors.mcdropout import MCDropout, mc_dropout_uncertainty
from gradmeta.uncertainty.detectors.odin import ODIN
from gradmeta.uncertainty.detectors.react import ReAct
from gradmeta.uncertainty.detectors.registry import REGISTRY, Param, register_detector
from gradmeta.uncertainty.detectors.vim import ViM

__all__ = ["KNN", "ODIN", "REGISTRY", "Detector", "FeatureDetector", "GradNorm", "MCDropout", "Mahalanobis", "Param", "ReAct",
           "SharedFeatures", "ViM", "logits_layer", "mc_dropout_uncertainty", "penultimate", "register_detector"]
