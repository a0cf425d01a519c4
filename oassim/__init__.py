"""oassim: a discrete-event simulator of 10k-card AI supernode clusters.

Layers, bottom to top (docs/architecture.md): hardware -> topology -> network -> collectives ->
workload -> scheduler -> analysis -> experiments -> cli. Importing the package does no work:
``oassim.run`` (the composition root, :func:`oassim.experiments.runner.run`) loads on first use.
"""

from typing import Any

__all__ = ["__version__", "run"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``oassim.run`` is :func:`oassim.experiments.runner.run`, imported on first use so that
    ``import oassim`` stays free of numpy, pandas, networkx and numba (PEP 562)."""
    if name == "run":
        from oassim.experiments.runner import run

        globals()["run"] = run  # later look-ups skip this hook
        return run
    raise AttributeError(f"module 'oassim' has no attribute {name!r}")
