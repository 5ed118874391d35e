"""The CNN of the study (built from its config, saved and loaded) and its training loop."""

from gradmeta.cnn.model import CNN, CNNConfig, build_cnn, file_sha256, load_model, save_model, to_tensor
from gradmeta.cnn.training import TrainConfig, accuracy, predict_logits, train_cnn, train_val_split

__all__ = ["CNN", "CNNConfig", "TrainConfig", "accuracy", "build_cnn", "file_sha256", "load_model",
           "predict_logits", "save_model", "to_tensor", "train_cnn", "train_val_split"]
