"""The field's post-hoc detectors, one file each with its formula and paper: Mahalanobis, Mahalanobis++,
relative Mahalanobis, KNN, ViM and ReAct (fitted on penultimate features), the feature norm, ExGrad, gradient
KNN and GradPCA (on the logits layer's per-sample gradient directions), DOCTOR and SIRC (rejection baselines), ODIN,
MC dropout and GradNorm
(on the model), all on one protocol
(:class:`Detector`: ``fit``, ``score``, ``predict``, ``columns``, ``state``/``from_state``) and
registered by name (:func:`register_detector`). ``predict*`` return outlier scores (pytorch-ood's
sign); ``score*`` gradmeta's (higher = in-distribution)."""

from gradmeta.uncertainty.detectors.base import Detector, FeatureDetector, ScoringBatch, logits_layer, penultimate
from gradmeta.uncertainty.detectors.doctor import DOCTOR
from gradmeta.uncertainty.detectors.exgrad import ExGrad
from gradmeta.uncertainty.detectors.feature_norm import FeatureNorm
from gradmeta.uncertainty.detectors.grad_knn import GradKNN
from gradmeta.uncertainty.detectors.grad_pca import GradPCA
from gradmeta.uncertainty.detectors.gradnorm import GradNorm
from gradmeta.uncertainty.detectors.knn import KNN
from gradmeta.uncertainty.detectors.mahalanobis import Mahalanobis
from gradmeta.uncertainty.detectors.mahalanobis_pp import MahalanobisPlusPlus
from gradmeta.uncertainty.detectors.mcdropout import MCDropout, mc_dropout_uncertainty
from gradmeta.uncertainty.detectors.odin import ODIN
from gradmeta.uncertainty.detectors.react import ReAct
from gradmeta.uncertainty.detectors.registry import REGISTRY, Param, register_detector
from gradmeta.uncertainty.detectors.rmd import RelativeMahalanobis
from gradmeta.uncertainty.detectors.sirc import SIRC
from gradmeta.uncertainty.detectors.vim import ViM

__all__ = ["DOCTOR", "KNN", "ODIN", "REGISTRY", "SIRC", "Detector", "ExGrad", "FeatureDetector", "FeatureNorm",
           "GradKNN", "GradNorm", "GradPCA", "MCDropout", "Mahalanobis", "MahalanobisPlusPlus", "Param", "ReAct",
           "RelativeMahalanobis", "ScoringBatch", "ViM", "logits_layer", "mc_dropout_uncertainty", "penultimate",
           "register_detector"]
