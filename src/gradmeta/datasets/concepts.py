"""The concepts of the study: one known concept (digits) and the unknown concepts."""

from __future__ import annotations

KNOWN_CONCEPT = "digits"
UNKNOWN_CONCEPTS = ("letters", "omniglot", "cifar10", "noise")
CONCEPTS = (KNOWN_CONCEPT, *UNKNOWN_CONCEPTS)
SOURCES = ("synthetic", "real")
NUM_CLASSES = 10
IMAGE_SIZE = 28

# Size keys in params.yaml (data.sizes): digits has a train and a test split, unknowns one set each.
SIZE_KEYS = ("digits_train", "digits_test", *UNKNOWN_CONCEPTS)
