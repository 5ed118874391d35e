"""Hardening, round 3, "bound every allocation by what the file can need": a small file that declares (or
inflates to) much more than its params and model allow is refused from its header, before anything of that
size is allocated; error lines stay short whatever the file held."""

import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from stage_runner import ROOT
from test_detector_pipeline import config as detectors_config
from test_detector_pipeline import model_and_train  # noqa: F401 (a fixture)
from test_untrusted_files import in_tmp_path, npy_header, one_line, user  # noqa: F401 (a fixture)

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.datasets import prepare_concept
from gradmeta.prepared import PreparedData, load_prepared, save_prepared
from gradmeta.uncertainty.detectors.base import logits_layer
from gradmeta.uncertainty.detectors.fitted import fit_detectors, load_detectors, save_detectors

ZEROS = bytes(1 << 22)


def replace_member(path, name, shape, descr):
    """Rewrite the npz at ``path`` with member ``name`` declaring ``shape`` and holding that many zero bytes,
    deflated (about 1000:1) and streamed: the file stays small, nothing of that size is ever in memory here."""
    members = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.filename != f"{name}.npy":
                members[info.filename] = zf.read(info)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
            out.write(npy_header(shape, descr))
            left = int(np.prod(shape, dtype=np.int64)) * np.dtype(descr).itemsize
            while left:
                out.write(ZEROS[: min(left, len(ZEROS))])
                left -= min(left, len(ZEROS))
    return path


def traced_peak(func):
    """Run ``func`` (expected to raise GradmetaError); its error and the peak of traced memory (bytes)."""
    tracemalloc.start()
    try:
        with pytest.raises(GradmetaError) as err:
            func()
        return err, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_detectors_file_declaring_a_bank_far_beyond_its_bank_size_is_refused_unread(tmp_path, model_and_train):  # noqa: F811
    model, x, y = model_and_train
    cfg = detectors_config()  # knn bank_size 50
    save_detectors(tmp_path / "d.npz", fit_detectors(model, x, y, cfg, "ab" * 32))
    replace_member(tmp_path / "d.npz", "knn/bank", (400_000, 64), "<f8")  # 205 MB declared, 0.2 MB on disk
    assert os.path.getsize(tmp_path / "d.npz") < 2_000_000
    err, peak = traced_peak(lambda: load_detectors(tmp_path / "d.npz", logits_layer(model, x[:1]), cfg))
    assert "state knn/bank declares shape (400000, 64), larger than detectors of these params" in one_line(err)
    assert peak < 20_000_000


def test_a_prepared_file_declaring_more_images_than_a_concept_may_have_is_refused_unread(tmp_path):
    n = 4
    save_prepared(tmp_path / "p.npz", PreparedData("letters", "synthetic_letters", "synthetic",
                                                   np.zeros((n, 28, 28), np.uint8), np.zeros(n), np.full(n, "test"),
                                                   np.arange(n)))
    replace_member(tmp_path / "p.npz", "images", (600_000, 28, 28), "|u1")  # 470 MB declared
    err, peak = traced_peak(lambda: load_prepared(tmp_path / "p.npz"))
    assert "images declared as uint8 (600000, 28, 28); a prepared concept holds uint8 (N, H, W) or (N, H, W, 3) " \
           "with 1 <= N <= 500000" in one_line(err)
    assert peak < 20_000_000


def test_arrays_are_read_without_a_second_whole_size_copy(tmp_path):
    n = 20_000  # 15.7 MB of images
    save_prepared(tmp_path / "p.npz", PreparedData("letters", "synthetic_letters", "synthetic",
                                                   np.ones((n, 28, 28), np.uint8), np.zeros(n), np.full(n, "test"),
                                                   np.arange(n)))
    tracemalloc.start()
    try:
        data = load_prepared(tmp_path / "p.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data.images.sum() == n * 784
    assert peak < 1.5 * data.images.nbytes + 8 * n * 8  # the images once (plus blocks), not twice


PEAK_PROBE = """
import resource, sys, torch
from gradmeta.cnn import load_model
from gradmeta.core.errors import GradmetaError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_model(sys.argv[1])
except GradmetaError as exc:
    print(exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_model_file_whose_config_outgrows_its_weights_is_refused_before_allocating(tmp_path):
    from gradmeta.cnn import CNNConfig, build_cnn, save_model

    small = CNNConfig(conv_channels=(8, 16), hidden=16)
    save_model(tmp_path / "cnn.pt", build_cnn(small, seed=0))
    ckpt = torch.load(tmp_path / "cnn.pt", weights_only=True)
    ckpt["config"]["hidden"] = 120_000  # 94M weights (376 MB), still under the config's own bound
    torch.save(ckpt, tmp_path / "cnn.pt")
    proc = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(tmp_path / "cnn.pt")], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=False)
    message, grown_mb = proc.stdout.strip().splitlines()
    assert "cnn.pt: weights do not match the architecture of its config (fc1.weight: (16, 784) where the config " \
           "needs (120000, 784))" in message, proc.stderr
    assert int(grown_mb) < 100


def test_a_yaml_alias_bomb_is_refused_at_its_first_alias(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}]" for i in range(1, 10)]  # 10^10 values when expanded
    (tmp_path / "params.yaml").write_text("train:\n" + "".join(f"  {line}\n" for line in lines))
    with pytest.raises(GradmetaError) as err:
        load_params(tmp_path / "params.yaml")
    assert "params.yaml: a YAML anchor (&name): params files may not use anchors or aliases at line 2" in one_line(err)


def test_an_error_quotes_at_most_80_characters_of_a_value(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  device: " + "x" * 10_000_000 + "\n")
    from gradmeta.cnn import TrainConfig

    with pytest.raises(GradmetaError) as err:
        TrainConfig.from_params(load_params(tmp_path / "params.yaml"))
    message = one_line(err).removeprefix(str(tmp_path / "params.yaml"))
    assert message.startswith(": train.device must be one of cpu, cuda, auto, got 'xxx") and len(message) < 140


def test_a_one_pixel_high_strip_under_the_pixel_cap_is_refused_by_its_side():
    Path("pics").mkdir()
    Image.new("L", (16_777_216, 1)).save("pics/strip.png")  # 16.7 M pixels; padded square: 2.8e14
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("folder", "pics"))
    assert "strip.png: 16777216x1 pixels; an image may be at most 4096 pixels on a side" in one_line(err)
