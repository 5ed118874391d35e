"""The README's params table, made from the declarations the stages and the library read.

Every parameter of ``params.yaml`` is declared once: a params group's in its config dataclass (a
:func:`gradmeta.core.params.setting` field: default, kind, bounds, what it is; the structured ones, which
have readers of their own, by a line of ``OTHER_PARAMS``), a detector's and a meta classifier's by the
``Param`` it registers with (its default: the class constructor's). This module lists them all, in the
order of the groups, as the markdown table between the README's markers::

    python -m gradmeta.params_table --write README.md    # rewrite the table there
    python -m gradmeta.params_table --check README.md    # exit 1 if it is not the table of this code

(``tests/test_params_table.py`` runs the check.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gradmeta.core.errors import GradmetaError
from gradmeta.core.params import GROUPS, Param, declared_settings

BEGIN = "<!-- params table: made by python -m gradmeta.params_table --write README.md -->"
END = "<!-- end of the params table -->"
HEADER = ("| parameter | takes | default | what it is |", "|---|---|---|---|")


def group_configs() -> dict[str, type]:
    """Each top-level group's config dataclass, in the order of :data:`GROUPS`."""
    from gradmeta.cnn.training import TrainConfig
    from gradmeta.datasets.config import DataConfig
    from gradmeta.evaluation.run import EvaluateConfig
    from gradmeta.meta.config import MetaConfig
    from gradmeta.uncertainty.detectors.config import DetectorsConfig
    from gradmeta.uncertainty.detectors_stage import DetectorsStageConfig
    from gradmeta.uncertainty.extraction import ExtractConfig

    configs = {"data": DataConfig, "train": TrainConfig, "extract": ExtractConfig, "detectors": DetectorsConfig,
               "detectors_stage": DetectorsStageConfig, "meta": MetaConfig, "evaluate": EvaluateConfig}
    if tuple(configs) != GROUPS:
        raise GradmetaError(f"params table: the groups {', '.join(configs)} are not params.yaml's {', '.join(GROUPS)}")
    return configs


def component_params(group: str) -> dict[str, dict[str, Param]]:
    """The registered components whose params live in ``group``: a detector's ``detectors.<name>``, a meta
    classifier's ``meta.<name>`` (name -> key -> Param, each default filled in)."""
    if group == "detectors":
        from gradmeta.uncertainty.detectors.config import registered_names
        from gradmeta.uncertainty.detectors.registry import REGISTRY

        return {name: dict(REGISTRY[name].params) for name in registered_names()}
    if group == "meta":
        from gradmeta.meta.classifiers import META_CLASSIFIERS

        return {name: dict(spec.params) for name, spec in sorted(META_CLASSIFIERS.items())}
    return {}


def shown_default(value: Any) -> str:
    """A default as params.yaml spells it: ``null``, ``true``, ``0.001``, ``[a, b]``, ``""``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown_default(v) for v in value) + "]"
    if value == "":
        return '""'
    return str(value)


def rows() -> Iterator[tuple[str, str, str, str]]:
    """(parameter, what it takes, default, what it is) of every declared parameter, group by group: the
    group's settings, its structured parameters, then its components' params."""
    for group, cls in group_configs().items():
        for key, _, param in declared_settings(cls):
            yield f"{group}.{key}", param.describe(), shown_default(param.default), param.doc
        for key, text in getattr(cls, "OTHER_PARAMS", {}).items():
            yield f"{group}.{key}", "structured", "", text
        for name, params in component_params(group).items():
            for key, param in params.items():
                yield f"{group}.{name}.{key}", param.describe(), shown_default(param.default), param.doc


def params_table() -> str:
    """The markdown table of :func:`rows`, between :data:`BEGIN` and :data:`END` (each cell's ``|``
    escaped, values in code)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [BEGIN, *HEADER]
    lines += [f"| `{name}` | {cell(takes)} | {f'`{cell(default)}`' if default else ''} | {cell(what)} |"
              for name, takes, default, what in rows()]
    return "\n".join([*lines, END])


def replaced(text: str, table: str, source: str) -> str:
    """``text`` with the part from :data:`BEGIN` to :data:`END` replaced by ``table``; a file without both
    markers, in that order, is an error naming it."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise GradmetaError(f"{source}: no params table markers ({BEGIN} ... {END})")
    return text[:start] + table + text[end + len(END):]


@click.command()
@click.option("--write", "write_path", default=None, help="Rewrite the table in this markdown file.")
@click.option("--check", "check_path", default=None, help="Exit 1 unless this file holds the table of this code.")
def main(write_path: str | None, check_path: str | None) -> None:
    table = params_table()
    if write_path is None and check_path is None:
        click.echo(table)
        return
    for path, writing in ((write_path, True), (check_path, False)):
        if path is None:
            continue
        text = Path(path).read_text()
        new = replaced(text, table, path)
        if writing:
            Path(path).write_text(new)
        elif new != text:
            click.echo(f"{path}: the params table is not this code's; run python -m gradmeta.params_table "
                       f"--write {path}", err=True)
            sys.exit(1)


if __name__ == "__main__":
    main()
