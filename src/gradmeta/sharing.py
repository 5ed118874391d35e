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
    (default: the repository's default remote). Raises :class:`GradmetaError` when there is no such remote."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(os.fspath(repo_dir)) as repo:
            repo.cloud.get_remote(remote)  # fails early, naming the remote, before anything is sent
            entries = repo.stage_cache.push(remote)
            workspace = repo.push(remote=remote)
            used = repo.stage_cache.get_used_objs(entries)
            sent = missing = 0
            for odb, objs in used.items():
                result = repo.cloud.push(objs, remote=remote, odb=odb)
                sent += len(result.transferred)
                missing += len(result.failed)
    except DvcException as exc:
        raise GradmetaError(f"dvc remote {remote or '(default)'}: {str(exc).splitlines()[0]}") from exc
    return Shared(len(entries), workspace, sent, missing)
