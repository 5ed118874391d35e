"""The field's post-hoc detectors, one file each with its formula and paper: Mahalanobis, KNN,
ViM, ReAct (on penultimate features), ODIN and MC dropout (on the model). ``predict*`` return
outlier scores (pytorch-ood's sign); ``score*`` gradmeta's (higher = in-distribution)."""

from gradmeta.uncertainty.detectors.base import FeatureDetector, logits_layer, penultimate
from gradmeta.uncertainty.detectors.knn import KNN
from gradmeta.uncertainty.detectors.mahalanobis import Mahalanobis
from gradmeta.uncertainty.detectors.mcdropout import mc_dropout_uncertainty
from gradmeta.uncertainty.detectors.odin import ODIN
from gradmeta.uncertainty.detectors.react import ReAct
from gradmeta.uncertainty.detectors.vim import ViM

__all__ = ["KNN", "ODIN", "FeatureDetector", "Mahalanobis", "ReAct", "ViM", "logits_layer", "mc_dropout_uncertainty",
           "penultimate"]
