import os

import pytest
import torch

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet_tqdm(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")


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
