"""gradmeta: classification uncertainty of neural networks from gradient information.

Reproduces and extends Oberdiek, Rottmann & Gottschalk (ANNPR 2018, arXiv 1805.08440).
"""

from gradmeta.core.errors import GradmetaError

__version__ = "0.1.0"
__all__ = ["GradmetaError", "__version__"]
