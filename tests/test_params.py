import pytest
import yaml

from gradmeta.cnn.training import TrainConfig
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.datasets import DataConfig
from gradmeta.meta import MetaConfig
from gradmeta.uncertainty.extraction import ExtractConfig


@pytest.mark.parametrize("data, message", [
    ({"source": "web"}, "data.source must be one of synthetic, real, got 'web'"),
    ({"concepts": {"digits": {"source": "emnist_digits", "train": 5, "test": 5},
                   "letters": {"source": "emnist_letters", "test": -3}}},
     "data.concepts.letters.test must be a positive integer or null, got -3"),
    ({"concepts": {"digits": {"source": "emnist_digits", "train": 0, "test": 5}}},
     "data.concepts.digits.train must be a positive integer or null, got 0"),
    ({"sizes": {"letters": 10}}, "data.sizes: sizes are now per concept: data.concepts.<name>.test"),
    ({"concepts": {}}, "data.concepts: no concepts defined"),
    ({"concepts": ["digits"]}, "data.concepts must be a mapping of concept name to its source"),
    ({"real": {"mirror": "not a url"}}, "data.real.mirror must be null or a base URL"),
    ({"seed": "x"}, "data.seed must be an integer >= 0 and <= 4294967295, got 'x'"),
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


@pytest.mark.parametrize("params, message", [
    ({"train": {"epoch": 5}}, "train.epoch is not a parameter; did you mean train.epochs?"),
    ({"train": {"architecture": {"hiden": 8}}}, "train.architecture.hiden is not a parameter; did you mean "
                                                 "train.architecture.hidden?"),
    ({"extract": {"chunksize": 8}}, "extract.chunksize is not a parameter; did you mean extract.chunk_size?"),
    ({"meta": {"repeat": 2}}, "meta.repeat is not a parameter; did you mean meta.repeats?"),
    ({"data": {"sed": 1}}, "data.sed is not a parameter; did you mean data.seed?"),
    ({"meta": {"feature_sets": {"x": []}}}, "meta.feature_sets.x must be a non-empty list of strings, got []"),
    ({"meta": {"classifiers": []}}, "meta.classifiers must be a non-empty list of strings, got []"),
    ({"train": {"architecture": {"kernel_size": 40}}}, "train.architecture.kernel_size must be at most"),
])
def test_misspelt_keys_and_empty_lists_are_refused_naming_the_parameter(tmp_path, params, message):
    path = tmp_path / "my-params.yaml"
    path.write_text(yaml.safe_dump(params))
    loaded = load_params(path)
    group = next(iter(params))
    with pytest.raises(GradmetaError) as err:
        {"train": TrainConfig, "data": DataConfig, "extract": ExtractConfig, "meta": MetaConfig}[group].from_params(loaded)
    assert str(err.value).startswith(f"{path}: ")  # the file --params named, not always params.yaml
    assert message in str(err.value)


def test_top_level_typos_yaml_errors_and_numbers_as_yaml_strings(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("trian:\n  epochs: 2\n")
    with pytest.raises(GradmetaError, match="p.yaml: trian is not a parameter; did you mean train"):
        load_params(path)
    path.write_text("train:\n  epochs: 2\n  seed: [1, 2\n")
    with pytest.raises(GradmetaError, match=r"p.yaml: not valid YAML at line \d+, column \d+"):
        load_params(path)
    path.write_text("train:\n  learning_rate: 2e-3\n")  # PyYAML reads 2e-3 as a string; DVC writes a float
    assert TrainConfig.from_params(load_params(path)).learning_rate == 0.002
    path.write_text("train:\n  learning_rate: fast\n")
    with pytest.raises(GradmetaError, match="train.learning_rate must be a number > 0.0, got 'fast'"):
        TrainConfig.from_params(load_params(path))


def test_the_detectors_stage_runs_from_its_own_group_and_the_old_keys_say_where_they_went():
    """``detectors.threads`` and ``detectors.device`` moved to ``detectors_stage`` (which no extract stage reads);
    a params file that still sets them is told so, naming the key."""
    from gradmeta.uncertainty.detectors.config import DetectorsConfig
    from gradmeta.uncertainty.detectors_stage import DetectorsStageConfig

    for key, value in (("threads", 1), ("device", "cpu")):
        with pytest.raises(GradmetaError, match=rf"params.yaml: detectors.{key}: moved to detectors_stage.{key}"):
            DetectorsConfig.from_params({"detectors": {key: value}})
    cfg = DetectorsStageConfig.from_params({"detectors_stage": {"threads": 1, "device": "cuda"}})
    assert (cfg.threads, cfg.device) == (1, "cuda")
    assert DetectorsStageConfig.from_params({}) == DetectorsStageConfig(2, "cpu")
    with pytest.raises(GradmetaError, match="detectors_stage.threads must be a positive integer"):
        DetectorsStageConfig.from_params({"detectors_stage": {"threads": 0}})
