"""The concepts of the study, shared by every stage: one known concept (digits), the unknown
concepts, and the image side length of prepared data."""

from __future__ import annotations

KNOWN_CONCEPT = "digits"
UNKNOWN_CONCEPTS = ("letters", "omniglot", "cifar10", "noise")
CONCEPTS = (KNOWN_CONCEPT, *UNKNOWN_CONCEPTS)
IMAGE_SIZE = 28
