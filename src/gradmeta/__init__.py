"""gradmeta: classification uncertainty of neural networks from gradient information.

Reproduces and extends Oberdiek, Rottmann & Gottschalk (ANNPR 2018, arXiv 1805.08440).

Importing gradmeta changes nothing in the process: the OpenMP policy and the CPU kernel pins are set by
the entry points (stage scripts, the ``gradmeta`` command) through :func:`gradmeta.core.process.prepare_process`.
"""

from gradmeta.core.errors import GradmetaError

__version__ = "0.1.0"
__all__ = ["GradmetaError", "__version__"]
