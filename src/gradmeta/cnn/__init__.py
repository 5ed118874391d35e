"""The classifier of the study: the model zoo (``train.architecture.kind``: the paper's CNN, ResNets), its
checkpoint files and a user's own trained weights, and the training loop."""

from gradmeta.cnn.architectures import ARCHITECTURES, architecture_from_dict, build_model, model_of, read_architecture
from gradmeta.cnn.checkpoint import check_weights, file_sha256, load_model, read_state_dict, save_model
from gradmeta.cnn.model import CNN, CNNConfig, build_cnn, to_tensor
from gradmeta.cnn.resnet import ResNet, ResNetConfig
from gradmeta.cnn.training import TrainConfig, accuracy, predict_logits, train_cnn, train_val_split

__all__ = ["ARCHITECTURES", "CNN", "CNNConfig", "ResNet", "ResNetConfig", "TrainConfig", "accuracy",
           "architecture_from_dict", "build_cnn", "build_model", "check_weights", "file_sha256", "load_model",
           "model_of", "predict_logits", "read_architecture", "read_state_dict", "save_model", "to_tensor",
           "train_cnn", "train_val_split"]
