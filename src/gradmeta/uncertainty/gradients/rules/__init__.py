"""Per-layer gradient rules, one file per module type: every module of this package is imported here, and
importing a rule's file registers it, so a new layer type is one file (and its test)."""

import pkgutil
from importlib import import_module
from pathlib import Path

from gradmeta.uncertainty.gradients.rules.registry import (
    Call,
    Rule,
    refuse_unmeasurable,
    register_rule,
    rule_for,
    unregister_rule,
)

for _info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
    import_module(f"{__name__}.{_info.name}")

__all__ = ["Call", "Rule", "refuse_unmeasurable", "register_rule", "rule_for", "unregister_rule"]
