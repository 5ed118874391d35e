"""Per-layer gradient rules, one file per module type; importing this package registers them."""

from gradmeta.uncertainty.gradients.rules import (  # noqa: F401  (importing a rule's file registers it)
    attention,
    batchnorm,
    conv,
    embedding,
    groupnorm,
    instancenorm,
    layernorm,
    linear,
)
from gradmeta.uncertainty.gradients.rules.registry import Call, Rule, register_rule, rule_for

__all__ = ["Call", "Rule", "register_rule", "rule_for"]
