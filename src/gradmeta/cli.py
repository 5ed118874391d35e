"""Command-line plumbing: the error wrapper every stage uses, and the ``gradmeta`` console script."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gradmeta.errors import GradmetaError

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(stage: str) -> logging.Logger:
    """A logger that writes ``<stage>: message`` lines to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr, force=True)
    return logging.getLogger(stage)


def reports_errors(func: F) -> F:
    """Turn a :class:`GradmetaError` into one ``error: ...`` line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GradmetaError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="gradmeta")
def main() -> None:
    """gradmeta: classification uncertainty from gradient information."""


@main.command("prepare")
@click.option("--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--concept", "concepts", multiple=True, help="Concept to prepare (repeatable; default: all).")
@click.option("--out-dir", default="data/prepared", show_default=True, type=click.Path(file_okay=False))
@reports_errors
def prepare(params_path: str, concepts: tuple[str, ...], out_dir: str) -> None:
    """Prepare concepts from the data group of a params file (real archives or synthetic) into npz files."""
    from pathlib import Path

    from gradmeta.datasets import CONCEPTS, DataConfig, prepare_concept, save_prepared
    from gradmeta.params import load_params

    cfg = DataConfig.from_params(load_params(params_path))
    chosen = concepts or CONCEPTS
    prepared = {c: prepare_concept(c, cfg) for c in chosen}
    for concept, data in prepared.items():
        save_prepared(Path(out_dir) / f"{concept}.npz", data)
        click.echo(f"{concept}: {len(data)} images ({data.source}) -> {Path(out_dir) / f'{concept}.npz'}")


@main.command("readme-results")
@click.option("--readme", default="README.md", show_default=True, type=click.Path(dir_okay=False))
@click.option("--report", default="metrics/report.md", show_default=True, type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Only check: exit 1 if the README's results block is stale.")
@reports_errors
def readme_results(readme: str, report: str, check: bool) -> None:
    """Regenerate the README's results block from the report (the main table and the claims)."""
    from gradmeta.report import update_readme

    stale = update_readme(readme, report, check=check)
    if check and stale:
        raise GradmetaError(f"{readme}: results block is stale; run `gradmeta readme-results`")
    if check:
        click.echo(f"{readme}: results block is up to date")
    else:
        click.echo(f"{readme}: results block {'updated' if stale else 'already up to date'}")
