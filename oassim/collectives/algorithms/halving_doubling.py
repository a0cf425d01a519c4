"""Recursive halving-doubling (Rabenseifner's algorithm, as in MPICH).

What is modelled, for n = 2^k ranks and size S (Thakur, Rabenseifner & Gropp, "Optimization
of collective communication operations in MPICH", IJHPCA 2005):

- reduce-scatter by recursive halving: step j = 1..k pairs each position with the one at
  distance n/2^j (``i XOR n/2^j``) and exchanges S/2^j; k steps, (n-1)/n S per rank.
- all-gather by recursive doubling: step j = 0..k-1 exchanges S 2^j/n with ``i XOR 2^j``.
- all-reduce: the two in turn: ``2 log2(n)`` latency terms + ``2(n-1)/n S/B``.

Each step is its own phase (the partner distance changes), but the reduce-scatter step at
distance d and the all-gather step at distance d carry the same flows and bytes, so the
engine's phase cache costs each distance once. For all-reduce on n that is not a power of
two, the r = n - 2^k extra ranks first hand their whole buffer to a partner among the
first r, sit out, and get the result back at the end (two extra phases of S).
Reduce-scatter and all-gather need a power-of-two group.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase

__all__ = ["halving_doubling_phases", "HalvingDoubling"]


def _xor_phase(g: np.ndarray, dist: int, size: float, label: str) -> Phase:
    p = g.shape[1]
    partner = np.arange(p) ^ dist
    return Phase(g.ravel(), g[:, partner].ravel(), size, label=label)


def halving_doubling_phases(op: str, groups: np.ndarray, size: float) -> list[Phase]:
    """Phases of recursive halving (reduce-scatter) and doubling (all-gather).

    Parameters
    ----------
    op : {"all_reduce", "reduce_scatter", "all_gather"}
    groups : ndarray of int64, shape (G, n)
        n must be a power of two except for all_reduce.
    size : float
        nccl-tests size, bytes.
    """
    g = np.asarray(groups, dtype=np.int64)
    n = g.shape[1]
    if n < 2:
        return []
    p = 1 << (n.bit_length() - 1)
    if p != n and op != "all_reduce":
        raise ValueError(f"halving-doubling {op} needs a power-of-two group, got {n}")
    core, extra = g[:, :p], g[:, p:]
    r = extra.shape[1]
    k = p.bit_length() - 1
    out: list[Phase] = []
    if r:
        out.append(Phase(extra.ravel(), core[:, :r].ravel(), size, label="fold extra ranks in"))
    if op in ("all_reduce", "reduce_scatter"):
        for j in range(1, k + 1):
            out.append(_xor_phase(core, p >> j, size / (1 << j), f"recursive halving, distance {p >> j}"))
    if op in ("all_reduce", "all_gather"):
        for j in range(k):
            out.append(_xor_phase(core, 1 << j, size * (1 << j) / p, f"recursive doubling, distance {1 << j}"))
    if r:
        out.append(Phase(core[:, :r].ravel(), extra.ravel(), size, label="return result to extra ranks"))
    return out


class HalvingDoubling(Algorithm):
    """Rabenseifner recursive halving-doubling."""

    name = "halving_doubling"
    ops = frozenset({"all_reduce", "reduce_scatter", "all_gather"})
    summary = "recursive halving-doubling (Rabenseifner): 2 log2(n) steps, bandwidth-optimal"

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        why = super().unsupported(req, caps)
        if why:
            return why
        n = req.group_size
        if req.op != "all_reduce" and n & (n - 1):
            return f"{req.op} by halving-doubling needs a power-of-two group, got {n} ranks"
        return None

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        return halving_doubling_phases(req.op, req.groups, req.size_bytes)
