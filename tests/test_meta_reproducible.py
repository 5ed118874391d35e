"""Meta classifiers give the same numbers whatever the BLAS: another kernel set (OpenBLAS core type,
a stand-in for another CPU) and another thread count must not move what the report shows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_meta import frame
from gradmeta.evaluation.scoring import score_all
from gradmeta.evaluation.summary import summarize_results
from gradmeta.meta import MetaConfig, fit_all
rng = np.random.default_rng(5)
frames = {"digits": frame("digits", 400, rng, wrong_rate=0.1)}
frames.update({c: frame(c, 150, rng) for c in ("letters", "omniglot", "cifar10", "noise")})
for f in frames.values():  # more, correlated columns: a harder, nearly collinear fit
    for k in range(6):
        f[f"grad/l{k}.weight/l1"] = (f["grad/fc.weight/l2"] * (1 + 0.01 * k) + rng.normal(0, 0.05, len(f))).astype("float32")
cfg = MetaConfig(repeats=2, classifiers=("logistic",), single_metrics=("softmax/entropy",),
                 feature_sets={"gradient": ("grad/*",), "all": ("softmax/*", "grad/*", "baseline/*")})
fitted = fit_all(frames, cfg, {})
summary = summarize_results(score_all(frames, fitted)[0])
scores = [float(s) for m in fitted.models for k, model in m.items() if k[2] == "logistic"
          for s in model.model_[-1].coef_.ravel()]
print(json.dumps({"summary": summary.round(4).to_dict("records"), "coef": scores}))
"""


def fit_with(env_overrides: dict[str, str]) -> dict:
    tests = Path(__file__).resolve().parent
    env = {**os.environ, **env_overrides}
    proc = subprocess.run([sys.executable, "-c", FIT, str(tests)], capture_output=True, text=True, env=env,
                          timeout=600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("env", [{"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "1"},
                                 {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}],
                         ids=["other-kernels-1-thread", "2-threads"])
def test_logistic_meta_results_do_not_depend_on_the_blas(env):
    reference = fit_with({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    other = fit_with(env)
    assert other["summary"] == reference["summary"]  # every reported number, at the report's precision
    worst = max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(reference["coef"], other["coef"]))
    assert worst < 1e-7, f"coefficients differ by {worst:.2e}"


def test_the_logistic_fit_is_the_optimum_not_a_solver_stop():
    """What makes the fit machine-independent: the gradient of the regularised loss
    C * sum(log-loss) + |w|^2 / 2 vanishes at the fitted coefficients (to ~1e-8), so there is one
    answer for every BLAS to agree on, whatever path the solver took."""
    import numpy as np

    from gradmeta.meta import LogisticMetaClassifier

    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.9).astype(int)
    base = y * 2.5 + rng.normal(0, 1, 2000)
    X = np.column_stack([base + rng.normal(0, 0.01, 2000) for _ in range(8)] + [rng.normal(0, 1, (2000, 4))])
    model = LogisticMetaClassifier(C=10.0).fit(X, y)
    Z = model.model_[:-1].transform(X)
    lr = model.model_[-1]
    p = 1 / (1 + np.exp(-(Z @ lr.coef_.ravel() + lr.intercept_[0])))
    grad_w = model.C * Z.T @ (p - y) + lr.coef_.ravel()
    grad_b = model.C * np.sum(p - y)
    assert model.converged_
    assert max(np.abs(grad_w).max(), abs(grad_b)) < 1e-6 * model.C * len(y)
