"""A detector is one file and one registration: a toy detector registered here, in the test module,
reaches the ``detectors`` params group (defaults, bounds, errors), the pipeline's features table
and the library's ``metric_table``, with values checked against a hand computation (scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from test_detector_pipeline import SMALL

from gradmeta import metric_table
from gradmeta.cnn import build_cnn, to_tensor
from gradmeta.core.errors import GradmetaError
from gradmeta.prepared import PreparedData
from gradmeta.uncertainty.detectors import REGISTRY, Detector, Param, register_detector
from gradmeta.uncertainty.detectors.config import DetectorsConfig
from gradmeta.uncertainty.extraction import ExtractConfig, extract_features


@pytest.fixture
def toy():
    """``toy_energy``: scale x logsumexp of the logits (the negated energy), nothing to fit."""

    @register_detector("toy_energy", params={"scale": Param(float, min=0.0, min_exclusive=True)})
    class ToyEnergy(Detector):
        def __init__(self, scale: float = 2.0):
            self.scale = scale

        def score(self, model, images, chunk_size=256):
            with torch.no_grad():
                return self.scale * torch.logsumexp(model(images).double(), dim=1)

        @classmethod
        def size_problems(cls, params, sizes):  # its size check, declared with it: a scale above the classes
            if sizes is not None and params["scale"] > sizes.classes:
                return {"scale": f"must be at most the model's {sizes.classes} classes, got {params['scale']:g}"}
            return {}

    yield ToyEnergy
    REGISTRY.pop("toy_energy")


def hand_scores(model, images: torch.Tensor, scale: float) -> np.ndarray:
    with torch.no_grad():
        logits = model(images).double().numpy()
    return scale * logsumexp(logits, axis=1)


def test_the_toy_has_a_params_group_with_its_defaults_and_bounds(toy):
    cfg = DetectorsConfig.from_params({"detectors": {"use": ["knn", "toy_energy"], "toy_energy": {"scale": 3}}})
    assert cfg.use == ("knn", "toy_energy") and cfg.param("toy_energy", "scale") == 3.0
    assert cfg.to_dict()["toy_energy_scale"] == 3.0 and cfg.to_dict()["knn_k"] == 10
    assert DetectorsConfig.from_params({"detectors": {"use": ["toy_energy"]}}).param("toy_energy", "scale") == 2.0
    with pytest.raises(GradmetaError, match=r"detectors\.toy_energy\.scale must be a number > 0.0"):
        DetectorsConfig.from_params({"detectors": {"toy_energy": {"scale": 0}}})
    with pytest.raises(GradmetaError, match=r"detectors\.toy_energy\.sharpness"):
        DetectorsConfig.from_params({"detectors": {"toy_energy": {"sharpness": 1}}})
    with pytest.raises(GradmetaError, match="already registered"):
        register_detector("toy_energy")(type("Other", (Detector,), {}))


def test_the_toys_size_check_stops_the_detectors_stage_before_any_feature(toy, monkeypatch):
    from gradmeta.uncertainty.detectors import fitted as fitted_detectors

    def no_work(*args, **kwargs):
        raise AssertionError("features computed before the sizes were checked")
    monkeypatch.setattr(fitted_detectors, "features_of", no_work)
    model = build_cnn(SMALL, seed=0).eval()
    images = torch.zeros(4, 1, 28, 28)
    cfg = DetectorsConfig.from_params({"detectors": {"use": ["knn", "toy_energy"], "toy_energy": {"scale": 11},
                                                     "knn": {"k": 2}}})
    with pytest.raises(GradmetaError, match=r"params.yaml: detectors\.toy_energy\.scale must be at most the model's "
                                            r"10 classes, got 11"):
        fitted_detectors.fit_detectors(model, images, torch.zeros(4, dtype=torch.long), cfg, "ab" * 32)


def test_the_toy_reaches_the_features_table_and_metric_table(toy):
    model = build_cnn(SMALL, seed=0).eval()
    rng = np.random.default_rng(2)
    data = PreparedData("letters", "synthetic_letters", "synthetic", rng.integers(0, 256, (6, 28, 28)).astype(np.uint8),
                        np.full(6, -1), np.full(6, "test"), np.arange(6))
    cfg = DetectorsConfig.from_params({"detectors": {"use": ["odin", "toy_energy"], "targets": [],
                                                     "toy_energy": {"scale": 0.5}}})
    frame = extract_features(model, data, ExtractConfig(chunk_size=4), progress=False, known=False, detectors=cfg)
    assert [c for c in frame.columns if c.startswith("detector/")] == ["detector/odin", "detector/toy_energy"]
    want = hand_scores(model, to_tensor(data.images), 0.5)
    np.testing.assert_allclose(frame["detector/toy_energy"].to_numpy(), want, rtol=1e-6)  # float32 in the table
    table = metric_table(model, to_tensor(data.images), detectors={"energy": toy(scale=0.5)})
    np.testing.assert_allclose(table["detector/energy"].to_numpy(), want, rtol=1e-12)


def test_the_fitted_detectors_must_come_from_the_detectors_stage(toy):
    model = build_cnn(SMALL, seed=0).eval()
    data = PreparedData("letters", "synthetic_letters", "synthetic", np.zeros((2, 28, 28), np.uint8),
                        np.full(2, -1), np.full(2, "test"), np.arange(2))
    cfg = DetectorsConfig.from_params({"detectors": {"use": ["knn"], "targets": []}})
    with pytest.raises(GradmetaError, match="'knn' has no fitted state: run the detectors stage"):
        extract_features(model, data, ExtractConfig(chunk_size=4), progress=False, known=False, detectors=cfg)


def test_each_default_is_declared_once_and_the_library_has_the_pipelines():
    """A detector parameter's default is its constructor's (so ``gradmeta.KNN()`` is the pipeline's KNN); a Param
    carries one only where the constructor requires the argument (ViM's dim); both, or neither, is refused."""
    import inspect

    from gradmeta import KNN, GradKNN, MCDropout

    for name, spec in REGISTRY.items():
        arguments = inspect.signature(spec.cls.__init__).parameters
        for key, param in spec.params.items():
            own = arguments[key].default
            assert own is inspect.Parameter.empty or own == param.default, (name, key)
    assert (KNN().k, KNN().bank_size) == (10, 5000) == (GradKNN.__init__.__defaults__[0], 5000)
    assert MCDropout().passes == REGISTRY["mc_dropout"].params["passes"].default == 10
    assert REGISTRY["vim"].params["dim"].default == 128  # the library's ViM needs it: it depends on the model

    class Twice(Detector):
        def __init__(self, scale: float = 1.0):
            self.scale = scale

        def score(self, model, images, chunk_size=256):
            raise AssertionError

    with pytest.raises(GradmetaError, match="the default of 'scale' is declared twice"):
        register_detector("twice", params={"scale": Param(float, default=2.0)})(Twice)
    with pytest.raises(GradmetaError, match="parameter 'size' is not an argument of Twice"):
        register_detector("twice", params={"size": Param(int)})(Twice)
    assert "twice" not in REGISTRY
