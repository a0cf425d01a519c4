"""oassim: a discrete-event simulator of 10k-card AI supernode clusters.

Layers, bottom to top (DESIGN.md): hardware -> topology -> network -> collectives ->
workload -> scheduler -> analysis -> experiments -> cli. Importing the package does no work.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
