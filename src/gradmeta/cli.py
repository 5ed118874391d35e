"""The ``gradmeta`` console script: ``prepare`` (check a data source), ``check`` (check params.yaml),
``readme-results``, ``share`` and ``seeds`` (the training-seed spread of experiments).

Subcommands import their library code when they run, so ``gradmeta --help`` stays fast."""

from __future__ import annotations

from pathlib import Path

import click

from gradmeta.core.console import reports_errors
from gradmeta.core.errors import GradmetaError
from gradmeta.core.process import prepare_process


@click.group()
@click.version_option(package_name="gradmeta")
def main() -> None:
    """gradmeta: classification uncertainty from gradient information.

    The pipeline itself runs with `dvc repro` (every stage, from the data to metrics/report.md; the
    README's first command), and `dvc exp run -S group.key=value` compares a variant. These commands
    check data and params, update the README's results and share results through a DVC remote."""
    prepare_process(strict=False)  # subcommands load numpy and torch after this: OpenMP policy, CPU kernel pins


@main.command("prepare")
@click.option("--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--concept", "concepts", multiple=True, help="Concept to prepare (repeatable; default: all).")
@click.option("--out-dir", default="prepared-check", show_default=True, type=click.Path(file_okay=False),
              help="Where the npz files go (by default not data/prepared/, which DVC tracks for the pipeline).")
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


@main.command("check")
@click.option("--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False))
@reports_errors
def check(params_path: str) -> None:
    """Check every group of a params file as the stages will read it, in a second, before `dvc repro`. DVC
    reads a few values itself (data.concepts, data.user_concepts and extract.shards make the stage list):
    a wrong type there stops DVC with an error that does not name them, and this names them."""
    from gradmeta.cnn import TrainConfig
    from gradmeta.core.params import load_params
    from gradmeta.datasets import DataConfig
    from gradmeta.evaluation.run import EvaluateConfig
    from gradmeta.meta.config import MetaConfig
    from gradmeta.uncertainty.stage import ExtractSettings

    params = load_params(params_path)
    DataConfig.from_params(params)
    TrainConfig.from_params(params)
    ExtractSettings.from_params(params)
    EvaluateConfig.from_params(params, MetaConfig.from_params(params))
    click.echo(f"{params_path}: every parameter group reads as the stages will read it")


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


@main.command("share")
@click.option("--remote", default=None, help="DVC remote to push to (default: the repository's default remote).")
@reports_errors
def share(remote: str | None) -> None:
    """Push results so that another machine's `dvc repro --pull` restores every stage and runs none: the
    cached outputs, the run-cache, and every object its entries point to (metrics, plots and report
    included, which `dvc push --run-cache` leaves out)."""
    from gradmeta.sharing import share_results

    shared = share_results(".", remote)
    click.echo(f"pushed {shared.entries} run-cache entries, {shared.workspace_objects} workspace objects and "
               f"{shared.entry_objects} objects the entries point to")
    if shared.missing_objects:
        click.echo(f"warning: {shared.missing_objects} objects of older run-cache entries are no longer in this "
                   "cache (dvc gc?); those runs cannot be restored elsewhere", err=True)


@main.command("seeds")
@click.option("--params", "params_file", default="params.yaml", show_default=True,
              help="The params file of the pipeline (openood/params.yaml for the OpenOOD project).")
@click.option("--metrics", "metrics_file", default="metrics/headline.json", show_default=True,
              help="Its headline metrics file (openood/metrics/headline.json for the OpenOOD project).")
@click.option("--from-json", "from_json", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Read a saved `dvc exp show --json` instead of running it.")
@click.option("-A", "--all-commits", is_flag=True, help="Experiments of every commit (`dvc exp show -A`).")
@reports_errors
def seeds(params_file: str, metrics_file: str, from_json: str | None, all_commits: bool) -> None:
    """Training-seed spread: experiments that differ only in train.seed (queue them with `dvc exp run --queue -S
    train.seed=1` ..., run with `dvc queue start`), as mean ± std over the seeds of every headline metric."""
    import json
    import shutil
    import subprocess
    import sys

    from gradmeta.seeds import seeds_report

    if from_json:
        text = Path(from_json).read_text()
    else:
        dvc = [shutil.which("dvc")] if shutil.which("dvc") else [sys.executable, "-m", "dvc"]
        shown = subprocess.run([*dvc, "exp", "show", "--json", *(["-A"] if all_commits else [])], capture_output=True,
                               text=True)
        if shown.returncode:
            raise GradmetaError(f"dvc exp show --json failed: {(shown.stderr or shown.stdout).strip()[-300:]}")
        text = shown.stdout
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GradmetaError(f"not the output of dvc exp show --json ({exc})") from None
    if not isinstance(data, list):
        raise GradmetaError("not the output of dvc exp show --json (a list of commits)")
    click.echo("\n".join(seeds_report(data, params_file, metrics_file)))
