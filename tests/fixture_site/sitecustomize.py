"""Test-only: lets stage subprocesses accept the fixture archives the tests build.

A fixture archive has the real format but not the published bytes, so not the published MD5. Tests
that run whole pipelines in subprocesses (``dvc repro``, queued experiments) put this folder on
PYTHONPATH and list ``{archive key: fixture md5}`` in ``GRADMETA_TEST_ARCHIVE_MD5``; right after
``gradmeta.datasets.download`` runs, those entries of ``ARCHIVES`` get the fixture checksums. Nothing
in the package reads that variable: without this file on the path it has no effect.
"""

import importlib.abc
import importlib.util
import json
import os
import sys

_OVERRIDE = json.loads(os.environ.get("GRADMETA_TEST_ARCHIVE_MD5", "{}"))
_TARGET = "gradmeta.datasets.download"


class _PatchArchives(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET or not _OVERRIDE:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            for key, md5 in _OVERRIDE.items():
                old = module.ARCHIVES[key]
                module.ARCHIVES[key] = module.ArchiveSpec(old.filename, old.url, md5, old.folder)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchArchives())
