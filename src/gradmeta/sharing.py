"""Share a pipeline's results through a DVC remote so that another machine restores every stage, runs none.

``dvc push --run-cache`` sends the run-cache's entries (which stage, with which deps and params, wrote which
outputs) and the objects of the outputs the workspace's ``dvc.lock`` tracks in the cache. It leaves out the
objects of the outputs declared ``cache: false`` (metrics, plots, the sample montages, the report: DVC keeps
them in git, and the run-cache holds a copy of each) and those of older run-cache entries. A machine whose
``dvc repro --pull`` finds such an entry cannot restore it and reruns the stage. :func:`share_results` pushes
what ``dvc push --run-cache`` pushes and, besides, every object every run-cache entry points to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gradmeta.core.errors import GradmetaError


@dataclass(frozen=True)
class Shared:
    """What :func:`share_results` sent: run-cache entries, objects of the workspace, objects of the entries,
    and the objects some entry names that this cache no longer holds (those runs cannot be restored elsewhere)."""

    entries: int
    workspace_objects: int
    entry_objects: int
    missing_objects: int


def share_results(repo_dir: str | os.PathLike[str] = ".", remote: str | None = None) -> Shared:
    """Push the workspace's cached outputs, the run-cache and every object its entries point to, to ``remote``
    (default: the repository's default remote). Raises :class:`GradmetaError` (one line) when there is no such remote,
    its DVC plugin is missing, its local folder does not exist, or it cannot be written."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    name = f"dvc remote {remote or '(default)'}"
    try:
        with Repo(os.fspath(repo_dir)) as repo:
            target = repo.cloud.get_remote(remote)  # fails early, naming the remote, before anything is sent
            if getattr(target.fs, "protocol", None) == "local" and not os.path.isdir(target.path):
                raise GradmetaError(f"{name}: the folder {target.path} does not exist (a mistyped path would "
                                    "silently start a new remote there); create it first if it is meant")
            entries = repo.stage_cache.push(remote)
            workspace = repo.push(remote=remote)
            used = repo.stage_cache.get_used_objs(entries)
            sent = missing = 0
            for odb, objs in used.items():
                result = repo.cloud.push(objs, remote=remote, odb=odb)
                sent += len(result.transferred)
                missing += len(result.failed)
    except DvcException as exc:
        raise GradmetaError(f"{name}: {_one_line(exc)}") from exc
    except ImportError as exc:  # the remote's DVC plugin (dvc-s3, dvc-gs, ...) is not installed
        raise GradmetaError(f"{name}: {_one_line(exc)}") from exc
    except OSError as exc:  # an unwritable or full remote folder, a path through a file
        raise GradmetaError(f"{name}: cannot write there ({exc.strerror or type(exc).__name__}: "
                            f"{exc.filename or ''})") from exc
    return Shared(len(entries), workspace, sent, missing)


def _one_line(exc: BaseException) -> str:
    """The whole message of ``exc`` on one line (DVC's run over several, e.g. the command that fixes it)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
