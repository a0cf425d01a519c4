"""oassim.collectives: collective operations as phases of flows, costed on a network model.

docs/architecture.md decision 6. A :class:`CollectiveRequest` (op, nccl-tests size, concurrent groups,
algorithm) is turned by an algorithm of :data:`ALGORITHMS` into phases of rank-to-rank flows;
the :class:`CollectiveEngine` costs them on a network model (``analytical`` or ``flow``) with
the achievable fractions and overheads of a :class:`Tuning` profile, memoised, and answers a
:class:`CollectiveResult` (time, algbw, busbw, per-link bytes and utilisation, bottleneck
tier). ``collective()`` does it in one call.

Layering: this package imports ``oassim.network`` and ``oassim.topology`` only; it knows
nothing of SimPy or workloads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oassim.collectives.algorithms import ALGORITHMS, Algorithm, algorithms_for
from oassim.collectives.caps import FabricCaps
from oassim.collectives.engine import CollectiveEngine
from oassim.collectives.groups import level_tensor, make_groups
from oassim.collectives.ops import OPS, CollectiveRequest, Op, busbw_factor, format_size, parse_size, parse_sizes
from oassim.collectives.phases import Phase, phase_totals
from oassim.collectives.results import CollectiveResult, PhaseCost
from oassim.collectives.tuning import Tuning, load_tuning
from oassim.topology.fabric import Fabric

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "algorithms_for",
    "FabricCaps",
    "CollectiveEngine",
    "make_groups",
    "level_tensor",
    "OPS",
    "Op",
    "CollectiveRequest",
    "busbw_factor",
    "format_size",
    "parse_size",
    "parse_sizes",
    "Phase",
    "phase_totals",
    "CollectiveResult",
    "PhaseCost",
    "Tuning",
    "load_tuning",
    "collective",
]


def collective(fabric: Fabric, op: str, size_bytes: float, groups: Any = None, algorithm: str = "auto",
               network: str = "analytical", tuning: Tuning | str | None = None, **request: Any) -> CollectiveResult:
    """Cost one collective in one call (builds an engine; keep one for repeated calls).

    Parameters
    ----------
    fabric : Fabric
    op : str
        One of :data:`OPS`.
    size_bytes : float
        nccl-tests size, bytes.
    groups : ndarray of int64 (G, n), or {"all", "domain", "rail"}, or int, optional
        Concurrent groups, or a split for :func:`make_groups` over all ranks (default: one
        group of every rank).
    algorithm, network, tuning
        See :class:`CollectiveEngine` and :data:`ALGORITHMS`.
    **request
        ``root`` or ``matrix`` of :class:`CollectiveRequest`.
    """
    engine = CollectiveEngine(fabric, network, tuning)
    if groups is None or isinstance(groups, (str, int)):
        groups = make_groups(engine.caps, None, groups)
    return engine.run(CollectiveRequest(op, size_bytes, np.asarray(groups), algorithm, **request))
