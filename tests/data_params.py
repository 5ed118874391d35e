"""Small ``data`` parameter groups for tests: the paper's five concepts with tiny sizes."""

from __future__ import annotations

from typing import Any

from gradmeta.datasets import DataConfig


def paper_concepts(digits=(4, 3), letters=5, omniglot=5, cifar10=4, noise=6) -> dict[str, dict[str, Any]]:
    """data.concepts for the paper's concepts; ``digits`` is (train, test)."""
    return {"digits": {"source": "emnist_digits", "train": digits[0], "test": digits[1]},
            "letters": {"source": "emnist_letters", "test": letters},
            "omniglot": {"source": "omniglot", "test": omniglot},
            "cifar10": {"source": "cifar10_grey", "test": cifar10},
            "noise": {"source": "uniform_noise", "test": noise}}


def data_config(concepts: dict | None = None, user: dict | None = None, **data: Any) -> DataConfig:
    """A validated DataConfig (through the params reader, as the stages build it)."""
    group = {"concepts": paper_concepts() if concepts is None else concepts, **data}
    if user is not None:
        group["user_concepts"] = user
    return DataConfig.from_params({"data": group})
