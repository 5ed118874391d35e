import numpy as np
import pytest
import torch
from data_params import data_config

from gradmeta.cnn import (
    CNNConfig,
    TrainConfig,
    accuracy,
    build_cnn,
    load_model,
    save_model,
    to_tensor,
    train_cnn,
    train_val_split,
)
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import prepare_concept

SMALL = CNNConfig(conv_channels=(8, 16), hidden=64)


def test_cnn_learns_synthetic_digits_well_above_chance():
    data = prepare_concept("digits", data_config({"digits": {"source": "emnist_digits", "train": 1500, "test": 400}}))
    train, test = data.select("train"), data.select("test")
    cfg = TrainConfig(epochs=3, batch_size=32, learning_rate=2e-3, architecture=SMALL)
    torch.manual_seed(0)
    model = build_cnn(SMALL, seed=0)
    x, y = to_tensor(train.images), torch.from_numpy(train.labels)
    curve = train_cnn(model, x, y, x[:0], y[:0], cfg, torch.device("cpu"), progress=False)
    acc = accuracy(model, to_tensor(test.images), torch.from_numpy(test.labels))
    assert acc > 0.45  # chance is 0.1; 0.69 on this machine
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]


def test_training_is_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((96, 1, 28, 28), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, 96))
    cfg = TrainConfig(epochs=2, batch_size=16, architecture=SMALL)
    paths = []
    for i in range(2):
        torch.manual_seed(0)
        model = build_cnn(SMALL, seed=0)
        train_cnn(model, x, y, x[:8], y[:8], cfg, torch.device("cpu"), progress=False)
        paths.append(tmp_path / f"m{i}.pt")
        save_model(paths[-1], model)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_default_architecture_shapes_and_names():
    model = build_cnn(CNNConfig(), seed=0)
    shapes = {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert shapes == {"conv1.weight": (32, 1, 5, 5), "conv1.bias": (32,), "conv2.weight": (64, 32, 5, 5),
                      "conv2.bias": (64,), "fc1.weight": (1024, 3136), "fc1.bias": (1024,),
                      "fc2.weight": (10, 1024), "fc2.bias": (10,)}
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = build_cnn(SMALL, seed=3)
    save_model(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt")
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    with pytest.raises(GradmetaError, match="model file not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes((tmp_path / "m.pt").read_bytes()[:1000])
    with pytest.raises(GradmetaError, match="bad.pt: not a gradmeta model checkpoint"):
        load_model(tmp_path / "bad.pt")


def test_train_val_split_is_disjoint_and_complete():
    tr, va = train_val_split(100, 0.2, seed=5)
    assert len(va) == 20 and len(tr) == 80
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(100))
    _, va2 = train_val_split(100, 0.2, seed=5)
    assert (va == va2).all()


class ViewAfterConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(h.view(len(h), -1))  # needs the standard layout


def test_training_layout_is_channels_last_only_where_the_forward_accepts_it():
    from gradmeta.cnn.training import _training_layout
    from gradmeta.runtime import configure

    probe = torch.rand(4, 1, 28, 28)
    assert _training_layout(build_cnn(SMALL, seed=0), probe) == torch.channels_last
    assert _training_layout(ViewAfterConv(), probe) == torch.contiguous_format
    assert _training_layout(build_cnn(SMALL, seed=0), probe.flatten(1)) == torch.contiguous_format  # no images
    x, y = torch.rand(200, 1, 28, 28), torch.randint(0, 10, (200,))
    weights = []
    for model in (build_cnn(SMALL, seed=0), build_cnn(SMALL, seed=0), ViewAfterConv()):
        configure(1, 0)
        train_cnn(model, x, y, x[:8], y[:8], TrainConfig(epochs=1, batch_size=32), torch.device("cpu"), progress=False)
        assert all(p.is_contiguous() for p in model.parameters())  # handed back in the standard layout
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])  # deterministic in channels-last layout too


def test_labels_beyond_the_output_layer_name_the_parameter_to_set():
    from gradmeta.cnn.stage import check_labels
    from gradmeta.prepared import PreparedData

    data = PreparedData("many", "npz", "user", np.zeros((4, 28, 28), np.uint8), np.array([0, 11, 3, -1]),
                        np.array(["train", "test", "train", "other"]), np.arange(4))
    with pytest.raises(GradmetaError, match=r"x.npz: concept 'many' has labels up to 11; set "
                                            r"train.architecture.num_classes to 12 \(now 10\)"):
        check_labels(data, 10, "x.npz")
    check_labels(data, 12, "x.npz")  # the unlabelled image is outside train and test: not checked


def test_the_train_stage_scores_the_train_split_no_second_time(monkeypatch):
    """train.json's train_accuracy is the last epoch's accuracy over its batches (the curve's), counted as it
    trained; after training only the validation and test images pass through the model again."""
    import logging

    from gradmeta.cnn import stage, training
    from gradmeta.prepared import PreparedData

    rng = np.random.default_rng(3)
    n = 120
    data = PreparedData("digits", "npz", "user", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
                        rng.integers(0, 10, n), np.where(np.arange(n) < 100, "train", "test"), np.arange(n))
    scored: list[int] = []
    real = training.predict_logits
    monkeypatch.setattr(training, "predict_logits", lambda model, x, *a: scored.append(len(x)) or real(model, x, *a))
    monkeypatch.setattr(stage, "predict_logits", lambda model, x, *a: scored.append(len(x)) or real(model, x, *a))
    cfg = TrainConfig(epochs=2, batch_size=16, val_fraction=0.2, architecture=SMALL, threads=1)
    trained = stage.run(cfg, data, logging.getLogger("test"))
    assert scored == [20, 20, 20]  # validation after each epoch, then the test split; never the 80 train images
    assert trained.metrics["train_accuracy"] == trained.curve[-1]["train_accuracy"]
