"""oassim: a discrete-event simulator of 10k-card AI supernode clusters.

Layers, bottom to top (docs/architecture.md): hardware -> topology -> network -> collectives ->
workload -> scheduler -> reliability -> analysis -> experiments -> cli. Importing the package does no work:
``oassim.run`` (the composition root, :func:`oassim.experiments.runner.run`) loads on first use.
"""

import os
from pathlib import Path
from typing import Any

__all__ = ["__version__", "run", "reliability", "numba_cache_dir"]

__version__ = "0.1.0"


def numba_cache_dir() -> Path:
    """Where numba keeps oassim's compiled kernels: ``$NUMBA_CACHE_DIR`` when set, else
    ``$XDG_CACHE_HOME/oassim/numba`` (``~/.cache/oassim/numba``); never the installed package,
    which may be read-only or shared by several users and must hold only source."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oassim" / "numba"


# numba reads NUMBA_CACHE_DIR once, when it is first imported (by a kernel module below this
# package); setting the default here, before any kernel module loads, is a string operation.
os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))


def __getattr__(name: str) -> Any:
    """``oassim.run`` is :func:`oassim.experiments.runner.run`, imported on first use so that
    ``import oassim`` stays free of numpy, pandas, networkx and numba (PEP 562).
    ``oassim.reliability`` is the reliability package, callable as
    :func:`oassim.experiments.reliability.reliability` (``oassim.reliability(SCENARIO, days=54)``)."""
    if name == "reliability":
        import importlib

        return importlib.import_module("oassim.reliability")
    if name == "run":
        from oassim.experiments.runner import run

        globals()["run"] = run  # later look-ups skip this hook
        return run
    raise AttributeError(f"module 'oassim' has no attribute {name!r}")
