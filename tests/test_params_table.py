"""One declaration per parameter: the README's params table is made from the declarations the stages read,
every key of the projects' params files is in it, and each declared key reaches its field."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import MAX_SEED, Param, declared_settings, load_params, setting
from gradmeta.evaluation.run import EvaluateConfig
from gradmeta.meta.config import MetaConfig
from gradmeta.params_table import group_configs, params_table, replaced, rows

ROOT = Path(__file__).resolve().parents[1]


def parse(group: str, params: dict):
    """The group's config as its stage reads it."""
    if group == "evaluate":
        return EvaluateConfig.from_params(params, MetaConfig.from_params(params))
    return group_configs()[group].from_params(params)


def test_the_readme_holds_the_table_of_this_code():
    text = (ROOT / "README.md").read_text()
    assert replaced(text, params_table(), "README.md") == text, "run python -m gradmeta.params_table --write README.md"


def leaf_keys(mapping: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        out += leaf_keys(value, f"{name}.") if isinstance(value, dict) and value else [name]
    return out


@pytest.mark.parametrize("params_file", ["params.yaml", "openood/params.yaml"])
def test_every_key_of_the_params_files_is_in_the_table(params_file):
    """The hand-written params files are the reference: each key is a row, or lies under a structured row."""
    names = [name for name, *_ in rows()]
    for key in leaf_keys(dict(load_params(ROOT / params_file))):
        assert any(key == n or key.startswith(f"{n}.") for n in names), f"{params_file}: {key} is not in the table"


def test_the_table_has_each_parameter_once_with_its_declared_default():
    table = list(rows())
    names = [name for name, *_ in table]
    assert len(names) == len(set(names))
    by_name = {name: (takes, default) for name, takes, default, _ in table}
    # hand-written: a few defaults as the README states them and the code reads them
    assert by_name["train.epochs"] == ("integer >= 1", "3")
    assert by_name["data.real.timeout"] == ("number > 0", "30")
    assert by_name["train.seed"] == (f"integer in [0, {MAX_SEED}]", "0")
    assert by_name["detectors.knn.bank_size"] == ("integer >= 1 or null", "5000")
    assert by_name["meta.logistic.C"] == ("number > 0 or 'auto'", "auto")
    assert by_name["evaluate.headline_prefix"] == ("string", '""')
    assert by_name["extract.statistics"][1] == "[l1, l2, max, min, mean, std]"


def another_value(param: Param):
    """A valid value of ``param`` other than its default."""
    d = param.default
    if param.kind is bool:
        return not d
    if param.kind is int:
        lo = int(param.min) if param.min is not None else 0
        candidates = [lo, lo + 1, lo + 2]
        return next(v for v in candidates if v != d and (param.max is None or v <= param.max))
    if param.kind is float:
        inside = [v for v in (0.25, 0.75, 2.0, 7.0, 150.0)
                  if (param.min is None or v > param.min) and (param.max is None or v < param.max)]
        return next(v for v in inside if not (isinstance(d, float) and math.isclose(v, d)))
    if param.kind is str:
        names = param.names()
        return next(c for c in names if c != d) if names else "other"
    if param.kind == "strs":
        names = param.names()
        return [names[0]] if names else ["softmax/entropy"]
    return [0.5]


SPECIAL = {"data.real.mirror": "https://mirror.example.invalid/gradmeta/", "evaluate.headline_prefix": "ab",
           "data.source": "synthetic"}  # real needs archives this test does not build: the default's other is kept


@pytest.mark.parametrize("group", list(group_configs()))
def test_each_declared_key_reaches_its_field(group):
    base = dict(load_params(ROOT / "params.yaml"))
    cls = group_configs()[group]
    declared = declared_settings(cls)
    assert declared, f"{group}: no declared settings"
    for key, field, param in declared:
        name = f"{group}.{key}"
        value = SPECIAL.get(name, another_value(param))
        params = copy.deepcopy(base)
        node = params.setdefault(group, {}) or {}
        params[group] = node
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {}) or {}
        node[last] = value
        got = getattr(parse(group, params), field.name)
        assert got == (tuple(value) if isinstance(value, list) and isinstance(field.default, tuple) else value), name
        # left out, the key reads as the declared default
        del node[last]
        if group == "data" and key == "source":
            continue
        assert getattr(parse(group, params), field.name) == param.default, name


def test_describe_states_kind_bounds_and_words():
    assert Param(int, min=1).describe() == "integer >= 1"
    assert Param(float, min=0.0, max=1.0, min_exclusive=True).describe() == "number in (0, 1]"
    assert Param(float, max=5.0, max_exclusive=True).describe() == "number < 5"
    assert Param(int, min=1, allow_none=True).describe() == "integer >= 1 or null"
    assert Param(float, min=0.0, min_exclusive=True, words=("auto",)).describe() == "number > 0 or 'auto'"
    assert Param(str, choices=("cpu", "cuda")).describe() == "one of cpu, cuda"
    assert Param("strs", choices=lambda: ["a", "b"], non_empty=True).describe() == "non-empty list of a, b"
    assert Param(bool).describe() == "true or false"


def test_a_setting_has_one_default():
    with pytest.raises(GradmetaError, match="the default is the field's"):
        setting(3, Param(int, default=4))
    with pytest.raises(GradmetaError, match="kind must be one of"):
        Param(list)


def test_a_table_without_markers_is_refused():
    with pytest.raises(GradmetaError, match="no params table markers"):
        replaced("# a README\n", params_table(), "README.md")
