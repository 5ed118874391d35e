import pytest

from gradmeta.cnn.training import TrainConfig
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.datasets import DataConfig


@pytest.mark.parametrize("data, message", [
    ({"source": "web"}, "data.source must be one of synthetic, real, got 'web'"),
    ({"sizes": {"letters": -3}}, "data.sizes.letters must be a positive integer or null, got -3"),
    ({"sizes": {"noise": 0}}, "data.sizes.noise must be a positive integer or null, got 0"),
    ({"sizes": {"shapes": 10}}, "data.sizes.shapes must be one of digits_train"),
    ({"seed": "x"}, "data.seed must be an integer >= 0, got 'x'"),
    ({"real": {"timeout": 0}}, "data.real.timeout must be a number > 0.0"),
])
def test_bad_data_params_name_the_parameter(data, message):
    with pytest.raises(GradmetaError) as err:
        DataConfig.from_params({"data": data})
    assert message in str(err.value)


@pytest.mark.parametrize("train, message", [
    ({"epochs": 0}, "train.epochs must be a positive integer, got 0"),
    ({"device": "tpu"}, "train.device must be one of cpu, cuda, auto, got 'tpu'"),
    ({"val_fraction": 1.0}, "train.val_fraction must be a number >= 0.0 and < 1.0"),
    ({"architecture": {"conv_channels": [32, 64, 128, 256, 512]}}, "train.architecture.conv_channels"),
    ({"architecture": {"hidden": -1}}, "train.architecture.hidden must be a positive integer"),
])
def test_bad_train_params_name_the_parameter(train, message):
    with pytest.raises(GradmetaError) as err:
        TrainConfig.from_params({"train": train})
    assert message in str(err.value)


def test_defaults_and_params_file_errors(tmp_path):
    assert DataConfig.from_params({}).source == "synthetic"
    assert TrainConfig.from_params({}).architecture.conv_channels == (32, 64)
    with pytest.raises(GradmetaError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("data: [unclosed")
    with pytest.raises(GradmetaError, match="not valid YAML"):
        load_params(tmp_path / "p.yaml")
