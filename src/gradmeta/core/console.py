"""Console plumbing of the stage scripts and the ``gradmeta`` command: log lines and error lines."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gradmeta.core.errors import GradmetaError

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
