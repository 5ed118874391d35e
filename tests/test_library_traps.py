"""No silent wrong answers from the library: a non-binary target, NaN images given to a detector, two
detectors writing one column, a zero chunk size, an overflow inside the model and a fit on too few
images each stop with one line that says what is wrong; the finite check stays flat in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradmeta import KNN, ODIN, GradNorm, Mahalanobis, MCDropout, ViM, measure_all, metric_table
from gradmeta.core.errors import GradmetaError
from gradmeta.uncertainty.model_calls.finite import first_non_finite_row


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3)).eval()


def test_measure_all_refuses_a_target_that_is_not_binary():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    for target in (np.array([1, 2, 1, 2]), np.array([0.9, 0.1, 0.9, 0.1]), np.array([-1, 1, -1, 1])):
        with pytest.raises(GradmetaError, match="target must be binary, 1 = in-distribution / correct"):
            measure_all(scores, target)
    assert measure_all(scores, np.array([False, False, True, True]))["auroc"] == 0.75  # bool is binary


def test_detectors_refuse_images_with_nan():
    model, x = net(), torch.rand(6, 12)
    x[4, 2] = float("nan")
    for detector in (ODIN(), MCDropout(passes=2), GradNorm()):
        with pytest.raises(GradmetaError, match=f"{type(detector).__name__}: image 4 has non-finite values"):
            detector.score(model, x)
    with pytest.raises(GradmetaError, match="KNN: image 4 has non-finite values"):
        KNN(k=2).fit(model, x)


def test_two_detectors_cannot_write_one_column_and_the_chunk_size_is_checked():
    model, x = net(), torch.rand(6, 12)
    with pytest.raises(GradmetaError, match=r"gives the column detector/mc_entropy, which another detector already gave"):
        metric_table(model, x, detectors={"mc_entropy": GradNorm(), "mc": MCDropout(passes=2)})
    with pytest.raises(GradmetaError, match="detector_chunk_size must be a positive integer, got 0"):
        metric_table(model, x, detectors={"g": GradNorm()}, detector_chunk_size=0)


def test_an_overflow_inside_the_model_is_named_not_written():
    model = net()
    with torch.no_grad():
        model[4].weight.mul_(1e38)  # finite weights, logits overflow to inf for large enough inputs
    x = torch.rand(5, 12)
    x[3] *= 1e6
    with pytest.raises(GradmetaError, match=r"column .* is not finite for \d+ image\(s\), the first image 3"):
        metric_table(model, x)


def test_fits_on_too_few_images_are_refused():
    with pytest.raises(GradmetaError, match="ViM needs at least 2 training features"):
        ViM(net()[4], 2).fit_features(torch.rand(1, 8))


def test_the_finite_check_goes_a_block_at_a_time():
    x = torch.zeros(10, 3)
    assert first_non_finite_row(x, rows_per_block=3) is None
    x[7, 1] = float("inf")
    assert first_non_finite_row(x, rows_per_block=3) == 7
    assert first_non_finite_row(torch.arange(4)) is None  # integer ids: nothing to check


def test_saved_states_that_cannot_be_right_are_refused():
    torch.manual_seed(1)
    z = torch.randn(50, 8, dtype=torch.float64)
    knn = KNN(k=3).fit_features(z)
    bad = {"bank": knn.state()["bank"].clone()}
    bad["bank"][2, 0] = float("nan")
    with pytest.raises(GradmetaError, match="KNN: state 'bank' is not a tensor of finite values"):
        KNN.from_state(bad, k=3)
    with pytest.raises(GradmetaError, match="not a matrix of unit rows"):
        KNN.from_state({"bank": z[:10] * 3.0}, k=3)  # an unnormalised bank would change every distance
    head = net()[4].double()
    vim = ViM(head, 2).fit_features(z)
    with pytest.raises(GradmetaError, match=r"does not fit 8 features and dim = 3"):
        ViM.from_state(vim.state(), head=head, dim=3)
    torch.testing.assert_close(ViM.from_state(vim.state(), head=head, dim=2).score_features(z), vim.score_features(z))


def test_a_detector_is_called_as_pytorch_ood_calls_one_and_takes_a_dataloader():
    from torch.utils.data import DataLoader, TensorDataset

    from gradmeta import Mahalanobis

    model = net()
    torch.manual_seed(1)
    x, y = torch.rand(40, 12), torch.arange(40) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=7)  # batches (images, labels), the last one short
    direct = Mahalanobis().fit(model, x, y)
    batched = Mahalanobis().fit(model, loader)  # the labels come from the batches
    torch.testing.assert_close(batched.score(model, x), direct.score(model, x), rtol=0, atol=0)
    torch.testing.assert_close(direct.score(model, loader), direct.score(model, x), rtol=0, atol=0)
    torch.testing.assert_close(direct(model, x), -direct.score(model, x), rtol=0, atol=0)  # = predict: outlier scores
    torch.testing.assert_close(ODIN()(model, [x[:5], x[5:]]), ODIN().predict(model, x), rtol=0, atol=0)
    with pytest.raises(GradmetaError, match="Mahalanobis.fit: batch 0 is a str"):
        Mahalanobis().fit(model, ["not a batch"])


def test_metric_table_takes_a_dataloader_or_a_list_of_batches():
    from torch.utils.data import DataLoader, TensorDataset

    model = net()
    torch.manual_seed(2)
    x = torch.rand(23, 12)
    expected = metric_table(model, x, detectors={"odin": ODIN()})
    loader = DataLoader(TensorDataset(x, torch.zeros(23, dtype=torch.long)), batch_size=5)
    for data in (loader, [x[:10], x[10:]]):
        got = metric_table(model, data, detectors={"odin": ODIN()})
        assert got.equals(expected)
    with pytest.raises(GradmetaError, match="metric_table: batch 1 lacks labels where the ones before had"):
        metric_table(model, [(x[:3], torch.zeros(3)), x[3:]])


def test_metric_table_moves_one_chunk_at_a_time_to_the_models_device(monkeypatch):
    """A fake device counter: every ``Tensor.to`` that names a device records how many images it moves. The
    largest move is one chunk whatever N is (the old detector pass moved all N images at once), so the
    device's memory for images is flat in N; the scores are those of the unchunked reference call."""
    moved: list[int] = []
    real_to = torch.Tensor.to

    def counting_to(self, *args, **kwargs):
        names_device = "device" in kwargs or any(isinstance(a, (torch.device, str)) for a in args)
        if names_device and self.dim() >= 2:
            moved.append(len(self))
        return real_to(self, *args, **kwargs)

    model = net()
    for n in (48, 192):
        torch.manual_seed(n)
        x, y = torch.rand(n, 12), torch.arange(n) % 3
        detectors = {"knn": KNN(k=2).fit(model, x, y), "odin": ODIN(), "mc": MCDropout(passes=2),
                     "mahalanobis": Mahalanobis().fit(model, x, y)}
        reference = {k: d.score(model, x, chunk_size=n) for k, d in detectors.items() if k != "mc"}
        monkeypatch.setattr(torch.Tensor, "to", counting_to)
        moved.clear()
        table = metric_table(model, x, detectors=detectors, chunk_size=16, detector_chunk_size=16)
        monkeypatch.setattr(torch.Tensor, "to", real_to)
        assert moved and max(moved) <= 16, (n, sorted(set(moved)))
        for k, scores in reference.items():
            expected = scores.numpy() if k != "odin" else detectors[k].temperature * np.log(scores.numpy())
            np.testing.assert_allclose(table[f"detector/{k}"].to_numpy(), expected, rtol=1e-12, atol=1e-12)
