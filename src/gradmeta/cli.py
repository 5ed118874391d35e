"""The ``gradmeta`` console script: ``prepare`` (check a data source) and ``readme-results``.

Subcommands import their library code when they run, so ``gradmeta --help`` stays fast."""

from __future__ import annotations

from pathlib import Path

import click

from gradmeta.core.console import reports_errors
from gradmeta.core.errors import GradmetaError


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
    """Prepare concepts of a params file's data group (any source: archives, stand-ins, noise, your own
    files) into npz files, and say what each one is: check a data set before the pipeline uses it."""
    from gradmeta.core.concepts import KIND_WORDS
    from gradmeta.core.params import load_params
    from gradmeta.datasets import DataConfig, prepare_concept
    from gradmeta.prepared import save_prepared

    cfg = DataConfig.from_params(load_params(params_path))
    chosen = concepts or tuple(cfg.concepts)
    prepared = {c: prepare_concept(c, cfg) for c in chosen}  # every concept first: a failure writes nothing
    for concept, data in prepared.items():
        save_prepared(Path(out_dir) / f"{concept}.npz", data)
        splits = ", ".join(f"{s} {int((data.split == s).sum())}" for s in dict.fromkeys(data.split.tolist()))
        labelled = "labelled" if (data.labels >= 0).all() else "no labels"
        click.echo(f"{concept}: {len(data)} images ({splits}; {labelled}), {KIND_WORDS[data.kind]}: "
                   f"{data.provenance['description']} -> {Path(out_dir) / f'{concept}.npz'}")


@main.command("readme-results")
@click.option("--readme", default="README.md", show_default=True, type=click.Path(dir_okay=False))
@click.option("--report", default="metrics/report.md", show_default=True, type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Only check: exit 1 if the README's results block is stale.")
@reports_errors
def readme_results(readme: str, report: str, check: bool) -> None:
    """Regenerate the README's results block from the report (the main table and the claims)."""
    from gradmeta.evaluation.report import update_readme

    stale = update_readme(readme, report, check=check)
    if check and stale:
        raise GradmetaError(f"{readme}: results block is stale; run `gradmeta readme-results`")
    if check:
        click.echo(f"{readme}: results block is up to date")
    else:
        click.echo(f"{readme}: results block {'updated' if stale else 'already up to date'}")
