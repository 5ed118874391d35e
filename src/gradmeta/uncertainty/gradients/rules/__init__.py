"""Per-layer gradient rules, one file per module type; importing this package registers them."""

from gradmeta.uncertainty.gradients.rules import conv, linear  # noqa: F401  (registers the rules)
from gradmeta.uncertainty.gradients.rules.registry import Rule, register_rule, rule_for

__all__ = ["Rule", "register_rule", "rule_for"]
