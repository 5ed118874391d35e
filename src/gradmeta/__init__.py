"""gradmeta: classification uncertainty of neural networks from gradient information.

Reproduces and extends Oberdiek, Rottmann & Gottschalk (ANNPR 2018, arXiv 1805.08440).
"""

import os

# OpenMP threads (torch's and XGBoost's) spin while they wait for work; on cores shared with other
# jobs that spinning makes every parallel region wait for threads that have no core, and a stage
# runs many times slower. The runtime reads the policy once, when torch or xgboost is first
# imported, so it is chosen here, before either is; a value set in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gradmeta.core.errors import GradmetaError  # noqa: E402 - after the OpenMP policy, on purpose

__version__ = "0.1.0"
__all__ = ["GradmetaError", "__version__"]
