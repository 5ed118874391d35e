"""Fitted meta classifiers are stored without pickle and come back scoring exactly the same."""

import io
import json
import os
import pickle

import numpy as np
import pytest
from stage_runner import run_stage, write_params
from test_meta import frame

from gradmeta.core.errors import GradmetaError
from gradmeta.meta import MetaConfig, fit_all, load_fitted, save_fitted
from gradmeta.meta.persistence import fitted_to_bytes
from gradmeta.meta.scenarios import as_arrays

UNKNOWNS = ["letters", "noise"]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    frames = {"digits": frame("digits", 200, rng), **{c: frame(c, 60, rng) for c in UNKNOWNS}}
    cfg = MetaConfig(repeats=2, unknown_concepts=tuple(UNKNOWNS), single_metrics=("softmax/entropy", "grad/*"),
                     classifier_params={"xgboost": {"n_estimators": 15, "max_depth": 2, "learning_rate": 0.3,
                                                    "subsample": 1.0, "n_jobs": 1}})
    return frames, fit_all(frames, cfg, {"digits": "synthetic"})


def test_round_trip_scores_exactly_and_writes_the_same_bytes(fitted, tmp_path):
    frames, original = fitted
    save_fitted(tmp_path / "meta.npz", original)
    loaded = load_fitted(tmp_path / "meta.npz")
    assert loaded.config == original.config and loaded.inputs == original.inputs and loaded.sources == original.sources
    cols = [c for c in frames["digits"].columns if "/" in c]
    X = np.concatenate([a[0] for a in as_arrays(frames, cols).values()])
    index = {c: i for i, c in enumerate(cols)}
    for before, after in zip(original.models, loaded.models):
        assert list(before) == list(after)
        for key, model in before.items():
            x = X[:, [index[c] for c in original.inputs.columns_of(key[1])]]
            np.testing.assert_array_equal(after[key].score_samples(x), model.score_samples(x))
            np.testing.assert_array_equal(after[key].predict(x), model.predict(x))
            assert after[key].threshold_ == model.threshold_
    for before, after in zip(original.splits, loaded.splits):
        for c in before:
            np.testing.assert_array_equal(before[c].test, after[c].test)
    assert fitted_to_bytes(loaded) == (tmp_path / "meta.npz").read_bytes()  # nothing lost


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_posing_as_the_meta_file_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "meta.npz").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(GradmetaError, match="not a readable meta classifiers file"):
        load_fitted(tmp_path / "meta.npz")
    buf = io.BytesIO()  # an npz whose manifest is an object array (a pickle inside)
    np.savez(buf, manifest=np.array([RunsCode(marker)], dtype=object))
    (tmp_path / "meta.npz").write_bytes(buf.getvalue())
    with pytest.raises(GradmetaError, match="meta.npz: not a readable meta classifiers file"):
        load_fitted(tmp_path / "meta.npz")
    write_params(tmp_path / "params.yaml")
    proc = run_stage("evaluate", tmp_path, "--meta", "meta.npz")
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: meta.npz:")
    assert not marker.exists()


def tampered(fitted, tmp_path, change):
    raw = dict(np.load(io.BytesIO(fitted_to_bytes(fitted[1])), allow_pickle=False))
    manifest = json.loads(str(raw["manifest"]))
    change(manifest, raw)
    raw["manifest"] = np.array(json.dumps(manifest))
    np.savez(tmp_path / "bad.npz", **raw)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("change, message", [
    (lambda m, a: m.update(format="gradmeta.meta/1"), "expected format gradmeta.meta/5"),
    (lambda m, a: m["repeats"][0]["models"][0].update(classifier="os.system"), "unknown model kind 'os.system'"),
    (lambda m, a: a.update({"model/0/0/classes": np.array([0.0, 1.0])}), "array model/0/0/classes is float64"),
    (lambda m, a: a.pop("split/0/digits/test"), "array split/0/digits/test is missing"),
])
def test_tampered_files_are_refused_with_one_line(fitted, tmp_path, change, message):
    with pytest.raises(GradmetaError, match=message):
        load_fitted(tampered(fitted, tmp_path, change))
