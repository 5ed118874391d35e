"""The model zoo (``train.architecture.kind``) and a user's own trained weights (``train.checkpoint``):
ResNet-18 in the key layout of the field's published CIFAR checkpoints, a small ResNet, exact gradients on
both, checkpoints checked name by name, and a train stage that trains nothing when given weights."""

import json
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from reference import assert_matches_reference, naive_gradient_stats
from stage_runner import TINY, run_stage, write_params
from test_stage_errors import assert_one_line_error
from test_untrusted_files import one_line
from test_wrong_answers import prepared_digits

from gradmeta.cnn import build_model, load_model, model_of, read_architecture, read_state_dict
from gradmeta.cnn.checkpoint import check_weights, file_sha256
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import ParamReader
from gradmeta.uncertainty.gradients import ALL_STATISTICS, gradient_statistics


def architecture(**values):
    return read_architecture(ParamReader(values, "train.architecture"))


RESNET18 = dict(kind="resnet18_32x32", in_channels=3, image_size=32)


def openood_layout(num_classes=10):
    """Name -> shape of the CIFAR ResNet-18 checkpoints the field publishes, written out independently."""
    def bn(prefix, c):
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}
    out = {"conv1.weight": (64, 3, 3, 3), **bn("bn1", 64)}
    c_in = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            out[f"{p}.conv1.weight"] = (width, c_in if block == 0 else width, 3, 3)
            out.update(bn(f"{p}.bn1", width))
            out[f"{p}.conv2.weight"] = (width, width, 3, 3)
            out.update(bn(f"{p}.bn2", width))
            if block == 0 and stage > 1:
                out[f"{p}.shortcut.0.weight"] = (width, c_in, 1, 1)
                out.update(bn(f"{p}.shortcut.1", width))
        c_in = width
    return {**out, "fc.weight": (num_classes, 512), "fc.bias": (num_classes,)}


def random_checkpoint(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in layout.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(100)
        elif name.endswith("running_var"):
            out[name] = torch.rand(shape, generator=g) + 0.5
        else:
            out[name] = torch.randn(shape, generator=g) * (0.1 if len(shape) > 1 else 1.0)
    return out


def functional_resnet18(state, x, mean, std):
    """The forward of a CIFAR ResNet-18 from its state_dict alone, in torch.nn.functional (the reference)."""
    def bn(p, h):
        return F.batch_norm(h, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                            state[f"{p}.bias"], False, 0.0, 1e-5)
    h = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    h = F.relu(bn("bn1", F.conv2d(h, state["conv1.weight"], padding=1)))
    for stage in range(1, 5):
        for block in range(2):
            p = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            out = F.relu(bn(f"{p}.bn1", F.conv2d(h, state[f"{p}.conv1.weight"], stride=stride, padding=1)))
            out = bn(f"{p}.bn2", F.conv2d(out, state[f"{p}.conv2.weight"], padding=1))
            short = (bn(f"{p}.shortcut.1", F.conv2d(h, state[f"{p}.shortcut.0.weight"], stride=stride))
                     if f"{p}.shortcut.0.weight" in state else h)
            h = F.relu(out + short)
    return F.linear(h.mean((2, 3)), state["fc.weight"], state["fc.bias"])


def test_resnet18_has_the_published_key_layout_and_parameter_count():
    cfg = architecture(**RESNET18)
    model = model_of(cfg)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == openood_layout()
    assert sum(p.numel() for p in model.parameters()) == cfg.parameter_count() == 11_173_962
    small = architecture(kind="small_resnet")
    assert sum(p.numel() for p in model_of(small).parameters()) == small.parameter_count()


@pytest.mark.parametrize("fmt", ["pt", "module_prefix", "wrapped", "safetensors"])
def test_a_checkpoint_in_the_published_layout_loads_and_computes_its_forward(tmp_path, fmt):
    state = random_checkpoint(openood_layout())
    path = tmp_path / f"best.{'safetensors' if fmt == 'safetensors' else 'ckpt'}"
    if fmt == "safetensors":
        write_safetensors(path, state)
    else:
        saved = ({f"module.{k}": v for k, v in state.items()} if fmt == "module_prefix"
                 else {"state_dict": state, "epoch": 100} if fmt == "wrapped" else state)
        torch.save(saved, path)
    weights = read_state_dict(path)
    cfg = architecture(**RESNET18)
    check_weights(weights, cfg, path)
    model = model_of(cfg)
    model.load_state_dict(weights)
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(model.eval()(x), functional_resnet18(state, x, cfg.mean, cfg.std), rtol=1e-4, atol=1e-4)


def write_safetensors(path, state):
    """The safetensors format written by hand: header size, JSON header of dtype/shape/offsets, raw bytes."""
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        data = tensor.numpy().astype("<f4" if tensor.is_floating_point() else "<i8").tobytes()
        header[name] = {"dtype": "F32" if tensor.is_floating_point() else "I64", "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("layer3.0.shortcut.0.weight"), "1 missing (the first: layer3.0.shortcut.0.weight)"),
    (lambda s: s.update({"head.weight": torch.zeros(2)}), "1 unexpected (the first: head.weight)"),
    (lambda s: s.update({"layer1.0.conv1.weight": torch.zeros(64, 64, 5, 5)}),
     "layer1.0.conv1.weight: (64, 64, 5, 5) where the config needs (64, 64, 3, 3)"),
    (lambda s: s.update({"fc.weight": torch.zeros(100, 512), "fc.bias": torch.zeros(100)}),
     "fc.weight: (100, 512) where the config needs (10, 512)"),  # a CIFAR-100 checkpoint
])
def test_a_checkpoint_that_does_not_fit_names_the_first_mismatch(tmp_path, change, message):
    state = random_checkpoint(openood_layout())
    change(state)
    torch.save(state, tmp_path / "best.ckpt")
    with pytest.raises(GradmetaError) as err:
        check_weights(read_state_dict(tmp_path / "best.ckpt"), architecture(**RESNET18), tmp_path / "best.ckpt")
    assert message in one_line(err)


def test_a_file_that_is_not_a_state_dict_is_named(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.ckpt")
    with pytest.raises(GradmetaError, match="list.ckpt: not a state_dict"):
        read_state_dict(tmp_path / "list.ckpt")
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(GradmetaError, match="x.safetensors: not a safetensors file \\(a header of 1000000000 bytes\\)"):
        read_state_dict(tmp_path / "x.safetensors")


@pytest.mark.parametrize("values", [dict(kind="small_resnet"), dict(RESNET18)])
def test_the_engine_is_exact_on_the_zoo(values):
    cfg = architecture(**values)
    model = build_model(cfg, seed=0).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    n = 2 if values["kind"] == "resnet18_32x32" else 4
    model, x = model.double(), torch.rand(n, cfg.in_channels, cfg.image_size, cfg.image_size, dtype=torch.float64)
    result = gradient_statistics(model, x, ALL_STATISTICS, chunk_size=n)  # float64: exact to rounding, any depth
    assert_matches_reference(result, naive_gradient_stats(model, x), ALL_STATISTICS, rtol=1e-6)


def test_architecture_params_are_checked():
    with pytest.raises(GradmetaError, match="train.architecture.kind must be one of cnn, resnet18_32x32, small_resnet"):
        architecture(kind="vgg")
    with pytest.raises(GradmetaError, match="train.architecture.widths is not a parameter"):
        architecture(kind="resnet18_32x32", widths=[8])
    with pytest.raises(GradmetaError, match="train.architecture.std must be a list of 3 numbers > 0"):
        architecture(kind="small_resnet", in_channels=3, std=[0.2, 0.0, 0.2])
    with pytest.raises(GradmetaError, match="train.architecture.blocks must be one count per entry of widths"):
        architecture(kind="small_resnet", widths=[8, 16], blocks=[1])


SMALL_RESNET = {"kind": "small_resnet", "widths": [8, 32], "blocks": [1, 1]}  # 32 features: ViM's dim 16 fits


def test_the_train_stage_trains_a_small_resnet_and_every_later_stage_reads_it(tmp_path):
    prepared_digits(tmp_path)
    no_dropout = [d for d in TINY["detectors"]["use"] if d != "mc_dropout"]  # a ResNet has no dropout layer
    write_params(tmp_path / "params.yaml", train={"architecture": SMALL_RESNET, "epochs": 1},
                 detectors={"use": no_dropout})
    assert run_stage("train", tmp_path).returncode == 0
    model = load_model(tmp_path / "models" / "cnn.pt")
    assert type(model).__name__ == "ResNet" and model.config.widths == (8, 32)
    proc = run_stage("detectors", tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = run_stage("extract", tmp_path, "--concept", "digits")
    assert proc.returncode == 0, proc.stderr
    from gradmeta.features import read_features
    frame, _ = read_features(tmp_path / "data" / "features" / "digits" / "part-0.parquet")
    assert len(frame) == 40 and "grad/layer2.0.shortcut.0.weight/l2" in frame.columns and "detector/knn" in frame.columns


def test_the_train_stage_with_a_checkpoint_trains_nothing_and_records_it(tmp_path):
    prepared_digits(tmp_path)
    cfg = architecture(**SMALL_RESNET)
    trained = build_model(cfg, seed=3)
    (tmp_path / "user_data" / "checkpoints").mkdir(parents=True)
    torch.save(trained.state_dict(), tmp_path / "user_data" / "checkpoints" / "mine.pt")
    write_params(tmp_path / "params.yaml", train={"architecture": SMALL_RESNET,
                                                  "checkpoint": "user_data/checkpoints/mine.pt"})
    proc = run_stage("train", tmp_path)
    assert proc.returncode == 0, proc.stderr
    loaded = load_model(tmp_path / "models" / "cnn.pt")
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)
    metrics = json.loads((tmp_path / "metrics" / "train.json").read_text())
    assert metrics["epochs"] == 0 and metrics["checkpoint"] == {
        "path": "user_data/checkpoints/mine.pt", "sha256": file_sha256(tmp_path / "user_data/checkpoints/mine.pt")}
    x = torch.from_numpy(np.load(tmp_path / "data/prepared/digits.npz")["images"][-40:].astype(np.float32) / 255)
    labels = np.load(tmp_path / "data/prepared/digits.npz")["labels"][-40:]
    expected = float((trained.eval()(x.unsqueeze(1)).argmax(1).numpy() == labels).mean())
    assert metrics["test_accuracy"] == pytest.approx(expected, abs=1e-4)
    assert json.loads((tmp_path / "metrics" / "train_curve.json").read_text()) == []
    assert loaded.checkpoint_info["checkpoint"] == metrics["checkpoint"]  # what extract writes into the features


@pytest.mark.parametrize("checkpoint, architecture, message", [
    ("elsewhere.pt", SMALL_RESNET, "train.checkpoint must lie in user_data/checkpoints/"),
    ("user_data/checkpoints/none.pt", SMALL_RESNET, "user_data/checkpoints/none.pt does not exist"),
    ("user_data/checkpoints/none.pt", {**SMALL_RESNET, "num_classes": 100},
     "train.checkpoint: a model of 100 classes (train.architecture.num_classes) for concept 'digits', whose labels "
     "are 0..9"),
])
def test_a_checkpoint_path_outside_its_folder_or_missing_is_one_line(tmp_path, checkpoint, architecture, message):
    prepared_digits(tmp_path)
    (tmp_path / "elsewhere.pt").write_bytes(b"x")
    write_params(tmp_path / "params.yaml", train={"architecture": architecture, "checkpoint": checkpoint})
    assert_one_line_error(run_stage("train", tmp_path), message)
    assert not (tmp_path / "models").exists()


def test_the_shipped_params_name_the_paper_cnn():
    from stage_runner import ROOT
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["train"]["architecture"]["kind"] == "cnn" and params["train"]["checkpoint"] is None


def test_the_report_names_a_users_trained_weights():
    from gradmeta.evaluation.provenance import data_section, model_line
    meta = {"kind": "user", "model": {"kind": "resnet18_32x32",
                                      "checkpoint": {"path": "user_data/checkpoints/best.ckpt", "sha256": "ab" * 32}}}
    assert model_line(meta) == ("**Model:** `resnet18_32x32`, your own trained weights "
                                "`user_data/checkpoints/best.ckpt` (sha256 abababababababab...), nothing trained by "
                                "the pipeline.")
    assert model_line({"kind": "synthetic"}) == ""  # the paper's CNN: no line, the report keeps its bytes
    assert model_line(meta) in data_section({"cifar10": meta}, "cifar10")


def test_the_features_say_which_model_made_them_unless_it_is_the_papers_cnn(tmp_path):
    from gradmeta.cnn import CNNConfig, build_cnn
    from gradmeta.uncertainty.stage import model_record
    assert model_record(build_cnn(CNNConfig(), seed=0)) == {}
    resnet = build_model(architecture(**SMALL_RESNET), seed=0)
    assert model_record(resnet) == {"model": {"kind": "small_resnet"}}
    resnet.checkpoint_info = {"checkpoint": {"path": "user_data/checkpoints/x.pt", "sha256": "00"}}
    assert model_record(resnet)["model"]["checkpoint"]["path"] == "user_data/checkpoints/x.pt"


@pytest.mark.parametrize("values", [dict(kind="cnn"), dict(kind="small_resnet", in_channels=3, widths=[4, 8],
                                                            blocks=[1, 1]), RESNET18])
def test_every_architecture_survives_its_own_model_file(tmp_path, values):
    """The file the train stage writes (models/cnn.pt) loads back into the same architecture and weights, for
    every kind of the zoo (a published layout's file holds no widths or blocks to refuse)."""
    from gradmeta.cnn import build_model, load_model, read_architecture, save_model
    from gradmeta.core.params import ParamReader

    config = read_architecture(ParamReader(dict(values), "train.architecture"))
    model = build_model(config, seed=0)
    save_model(tmp_path / "cnn.pt", model)
    loaded = load_model(tmp_path / "cnn.pt")
    assert loaded.config == config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
