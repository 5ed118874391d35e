import io
import os
import sys

import pytest
import torch

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet_tqdm(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture
def stderr_on(monkeypatch):
    """``stderr_on(terminal)``: sys.stderr becomes a buffer that says it is a TTY (or not, as tqdm asks), returned."""

    def install(terminal: bool) -> io.StringIO:
        class Stderr(io.StringIO):
            def isatty(self) -> bool:
                return terminal

        err = Stderr()
        monkeypatch.setattr(sys, "stderr", err)
        return err

    return install


@pytest.fixture
def test_models():
    """name -> a fresh instance of each model of the shared zoo (tests/model_zoo.py), built with seed 0."""
    import model_zoo as models

    factories = {"strided_conv": models.StridedConvNet, "colour": models.ColourNet, "view": models.ViewNet,
                 "layout_assuming": models.LayoutAssumingNet, "batchnorm": models.BatchNormNet, "mlp": models.MLP,
                 "sequence": models.SequenceNet, "tied": models.TiedNet, "resnet_like": models.resnet_like,
                 "tiny_transformer": models.TinyTransformer, "conv1d3d": models.Conv1d3d,
                 "embedder": models.Embedder, "with_generic": models.WithGeneric, "small_resnet": models.small_resnet}
    out = {}
    for name, make in factories.items():
        torch.manual_seed(0)
        out[name] = make()
    return out


def announced(markexpr: str, nodeid: str) -> str | None:
    """The line the run prints as a test starts: in the slow tier (``-m slow``, minutes per test, nothing
    printed until one ends) ``running <test>``; None in the unit tier."""
    return f"running {nodeid}" if markexpr.strip() == "slow" else None


def pytest_runtest_logstart(nodeid, location):  # noqa: ARG001 - pytest's hook signature
    """Under pytest-xdist the controller calls this as a worker starts a test: the slow tier says which."""
    config = _CONFIG.get("config")
    line = announced(config.option.markexpr or "", nodeid) if config is not None else None
    reporter = config.pluginmanager.get_plugin("terminalreporter") if line else None
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write(line + "\n", flush=True)  # now: a slow test prints nothing else for minutes


_CONFIG: dict = {}


def pytest_configure(config):
    _CONFIG["config"] = config
