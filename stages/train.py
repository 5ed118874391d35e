"""DVC stage `train`: fit the CNN on the known concept's train split; write the model and its metrics."""

from __future__ import annotations

import time

import click
import torch

from gradmeta.cnn import (
    TrainConfig,
    accuracy,
    build_cnn,
    predict_logits,
    save_model,
    to_tensor,
    train_cnn,
    train_val_split,
)
from gradmeta.core.atomic import round_floats, write_json
from gradmeta.core.concepts import KNOWN_CONCEPT
from gradmeta.core.console import reports_errors, setup_logging
from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import load_params
from gradmeta.core.runtime import configure, resolve_device
from gradmeta.prepared import load_prepared


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--data", "data_path", default=f"data/prepared/{KNOWN_CONCEPT}.npz", show_default=True)
@click.option("--model-out", default="models/cnn.pt", show_default=True)
@click.option("--metrics-out", default="metrics/train.json", show_default=True)
@click.option("--curve-out", default="metrics/train_curve.json", show_default=True)
@reports_errors
def main(params_path: str, data_path: str, model_out: str, metrics_out: str, curve_out: str) -> None:
    log = setup_logging("train")
    cfg = TrainConfig.from_params(load_params(params_path))
    device = resolve_device(cfg.device)
    configure(cfg.threads, cfg.seed)
    data = load_prepared(data_path)
    train, test = data.select("train"), data.select("test")
    if len(train) < 2 or len(test) < 1:
        raise GradmetaError(f"{data_path}: need a train split of at least 2 images and a test split, "
                            f"got {len(train)} train and {len(test)} test")
    train_idx, val_idx = train_val_split(len(train), cfg.val_fraction, cfg.seed)
    x, y = to_tensor(train.images), torch.from_numpy(train.labels)
    x_test, y_test = to_tensor(test.images), torch.from_numpy(test.labels)
    log.info("%d train / %d validation / %d test images (%s source) on %s", len(train_idx), len(val_idx),
             len(test), data.source, device)
    model = build_cnn(cfg.architecture, seed=cfg.seed)
    start = time.perf_counter()
    curve = train_cnn(model, x[train_idx], y[train_idx], x[val_idx], y[val_idx], cfg, device)
    log.info("trained %d epochs in %.1f s", cfg.epochs, time.perf_counter() - start)
    model.cpu()
    test_pred = predict_logits(model, x_test).argmax(1)
    test_errors = int((test_pred != y_test).sum())
    metrics = {
        "source": data.source,
        "epochs": cfg.epochs,
        "train_accuracy": accuracy(model, x[train_idx], y[train_idx]),
        "val_accuracy": curve[-1]["val_accuracy"] if len(val_idx) else None,
        "test_accuracy": 1.0 - test_errors / len(test),
        "test_errors": test_errors,
        "test_size": len(test),
    }
    log.info("test accuracy %.4f (%d errors of %d)", metrics["test_accuracy"], test_errors, len(test))
    save_model(model_out, model, info={"source": data.source, "train_size": len(train_idx), "seed": cfg.seed})
    write_json(metrics_out, round_floats(metrics))
    write_json(curve_out, round_floats(curve))


if __name__ == "__main__":
    main()
