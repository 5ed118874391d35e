"""A new meta classifier is one file and its test: a classifier registered inside this test module with its
params group reaches params.yaml's ``meta`` group (defaults from its constructor, bounds from its Params),
the meta stage's fits and saved file (its own state, rebuilt on load), and scikit-learn's parameter
validation. Reference: the score computed by hand with NumPy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradmeta.core.concepts import Concepts
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import Param
from gradmeta.meta import MetaConfig, fit_all
from gradmeta.meta.classifiers import META_CLASSIFIERS, ThresholdedClassifier, register_meta_classifier
from gradmeta.meta.persistence import load_fitted, save_fitted

CONCEPTS = Concepts("digits", ("noise",))


@pytest.fixture
def toy():
    """``toy_centroid``: scale x (x . (mean of correct rows - mean of wrong rows)) of the meta-train rows."""

    @register_meta_classifier("toy_centroid", params={"scale": Param(float, min=0.0, min_exclusive=True)})
    class ToyCentroid(ThresholdedClassifier):
        def __init__(self, scale: float = 3.0, random_state: int = 0):
            self.scale, self.random_state = scale, random_state

        def _fit(self, X, target):
            self.direction_ = X[target == 1].mean(0) - X[target == 0].mean(0)

        def _scores(self, X):
            return self.scale * (X @ self.direction_)

        def _state_into(self, scalars, arrays):
            arrays["direction"] = self.direction_

        def _restore(self, scalars, read, n):
            self.direction_ = read.array("direction", "f", 1, n)

    yield ToyCentroid
    META_CLASSIFIERS.pop("toy_centroid")
    ThresholdedClassifier._KINDS.pop("toy_centroid")


def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    out = {}
    for concept, n in (("digits", 200), ("noise", 60)):
        correct = rng.random(n) >= 0.25 if concept == "digits" else np.zeros(n, dtype=bool)
        f = pd.DataFrame({"concept": concept, "index": np.arange(n), "label": 0, "pred": 0, "correct": correct})
        f["softmax/entropy"] = (np.where(correct, 0.0, 1.5) + rng.normal(0, 0.5, n)).astype(np.float32)
        f["grad/fc.weight/l2"] = (np.where(correct, 0.0, 1.0) + rng.normal(0, 0.5, n)).astype(np.float32)
        out[concept] = f
    return out


def test_the_toys_params_group_is_read_with_its_defaults_and_bounds(toy):
    cfg = MetaConfig.from_params({"meta": {"classifiers": ["toy_centroid", "logistic"]}}, CONCEPTS)
    assert cfg.classifier_params["toy_centroid"] == {"scale": 3.0}  # the constructor's default
    cfg = MetaConfig.from_params({"meta": {"classifiers": ["toy_centroid"], "toy_centroid": {"scale": 0.5}}}, CONCEPTS)
    assert cfg.classifiers == ("toy_centroid",) and cfg.classifier_params["toy_centroid"] == {"scale": 0.5}
    with pytest.raises(GradmetaError, match=r"params.yaml: meta.toy_centroid.scale must be a number > 0.0, got 0"):
        MetaConfig.from_params({"meta": {"toy_centroid": {"scale": 0}}}, CONCEPTS)
    with pytest.raises(GradmetaError, match="meta.toy_centroid.size is not a parameter"):
        MetaConfig.from_params({"meta": {"toy_centroid": {"size": 1}}}, CONCEPTS)
    with pytest.raises(ValueError, match="'scale' parameter of ToyCentroid must be a float in the range"):
        toy(scale=-1.0).fit(np.ones((4, 1)), np.array([0, 1, 0, 1]))  # scikit-learn's check, from the same Param


def test_the_toy_is_fitted_saved_and_loaded_by_the_meta_stages_code(toy, tmp_path):
    data = frames()
    cfg = MetaConfig(repeats=2, known_concept="digits", unknown_concepts=("noise",), classifiers=("toy_centroid",),
                     single_metrics=(), feature_sets={"both": ("softmax/*", "grad/*")},
                     classifier_params={"toy_centroid": {"scale": 2.0}}, known_unknowns=("noise",))
    fitted = fit_all(data, cfg, {})
    models = {key: model for repeat in fitted.models for key, model in repeat.items() if key[2] == "toy_centroid"}
    assert models and all(isinstance(m, toy) and m.scale == 2.0 for m in models.values())
    save_fitted(tmp_path / "meta.npz", fitted)
    back = load_fitted(tmp_path / "meta.npz")
    X = data["digits"][["softmax/entropy", "grad/fc.weight/l2"]].to_numpy(np.float64)
    for r, (splits, repeat) in enumerate(zip(fitted.splits, back.models)):
        model = repeat[("known", "both", "toy_centroid")]
        train = splits["digits"].train
        correct = data["digits"]["correct"].to_numpy()[train]
        direction = X[train][correct].mean(0) - X[train][~correct].mean(0)  # by hand, from the split's rows
        np.testing.assert_allclose(model.score_samples(X), 2.0 * X @ direction, rtol=1e-12)
        assert back.config.classifier_params["toy_centroid"] == {"scale": 2.0}, r
