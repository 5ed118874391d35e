"""Console plumbing of the stage scripts and the ``gradmeta`` command: log lines and error lines."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gradmeta.core.errors import GradmetaError

F = TypeVar("F", bound=Callable[..., Any])


STARTUP_LOG = "GRADMETA_STARTUP_LOG"  # set (to anything) to log each stage's start-up time


def setup_logging(stage: str) -> logging.Logger:
    """A logger that writes ``<stage>: message`` lines to stderr. With ``$GRADMETA_STARTUP_LOG`` set, its first
    line is the stage's start-up: ``start-up 1.84 s`` from the process's start to here, where the stage's
    imports are done and its work begins (``benchmarks/fast_loop.py`` reads it)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr, force=True)
    log = logging.getLogger(stage)
    if os.environ.get(STARTUP_LOG):
        seconds = seconds_since_process_start()
        log.info("start-up %s", "unknown (no /proc on this system)" if seconds is None else f"{seconds:.2f} s")
    return log


def seconds_since_process_start() -> float | None:
    """Seconds since this process started, from Linux's /proc (its start time in clock ticks since boot, and the
    uptime; 10 ms resolution); None where there is no /proc."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, starttime (fields 1-2: pid, comm)
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


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


def stage_item(given: str | None, option: str) -> tuple[str, str]:
    """The stage this process is, as ``(name, item)``: ``item`` is ``given`` (an option on the command line) or,
    under DVC, what follows ``@`` in ``$DVC_STAGE`` (``download@digits`` -> ``("download", "digits")``).

    dvc.yaml passes no concept name on a command line: DVC interpolates ``${key}`` into a stage's ``cmd``
    unquoted and a shell runs it, so a name could run a command before gradmeta ever checks it. The stage
    reads its item from the environment DVC sets instead, and checks it against params.yaml.
    """
    raw = os.environ.get("DVC_STAGE")
    addressing = (raw or "").rsplit(":", 1)[-1]
    name, _, item = addressing.partition("@")
    if given is not None:
        return name, given
    if raw is None:
        raise GradmetaError(f"{option} is required outside a DVC stage (no DVC_STAGE in the environment)")
    if not name or not item:
        raise GradmetaError(f"DVC_STAGE={raw[:80]!r} in the environment is not a stage address '<stage>@<item>' "
                            f"(dvc.yaml's foreach stages set it); outside DVC, unset it and give {option}")
    return name, item
