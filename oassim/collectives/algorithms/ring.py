"""Ring algorithms (NCCL's default for large messages).

What is modelled, for n ranks in ring order (the group's position order) and size S:

- reduce-scatter: n-1 steps; in each, every rank sends one chunk of S/n to the next rank.
- all-gather: the same, with S the gathered output (chunks of S/n).
- all-reduce: reduce-scatter then all-gather, 2(n-1) identical neighbour steps of S/n. One
  :class:`Phase` with ``repeat = 2(n-1)``: the engine costs one step and multiplies, which
  gives the textbook ``2(n-1)/n * S/B + 2(n-1)`` latency terms on an uncontended ring
  (Patarasuk & Yuan, JPDC 2009; NCCL ``doc``).
- broadcast / reduce: a pipelined chain from (to) the root: every chain link carries S at
  once, and a chunk crosses n-1 hops in sequence (``steps = n-1``): ``S/B + (n-1)`` latency
  terms.

The ring's neighbour flows of every concurrent group are one phase, so groups whose rings
cross the same links contend for them.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase, ring_pairs

__all__ = ["ring_phases", "chain_phase", "Ring"]


def chain_phase(groups: np.ndarray, size: float, root: int, toward_root: bool, label: str) -> Phase:
    """Pipelined chain through the group in ring order starting at position ``root``."""
    g = np.roll(np.asarray(groups, dtype=np.int64), -root, axis=1)
    n = g.shape[1]
    a, b = g[:, :-1].ravel(), g[:, 1:].ravel()
    src, dst = (b, a) if toward_root else (a, b)
    return Phase(src, dst, size, steps=n - 1, label=label)


def ring_phases(op: str, groups: np.ndarray, size: float, root: int = 0) -> list[Phase]:
    """Phases of the ring algorithm for ``op`` on every group at once.

    Parameters
    ----------
    op : str
        all_reduce, reduce_scatter, all_gather, broadcast or reduce.
    groups : ndarray of int64, shape (G, n)
        Ranks in ring order.
    size : float
        nccl-tests size, bytes.
    root : int
        Root position for broadcast / reduce.
    """
    g = np.asarray(groups, dtype=np.int64)
    n = g.shape[1]
    if n < 2:
        return []
    if op in ("broadcast", "reduce"):
        return [chain_phase(g, size, root, op == "reduce", f"ring {op} (pipelined chain)")]
    src, dst = ring_pairs(g)
    chunk = size / n
    if op == "all_reduce":
        return [Phase(src, dst, chunk, repeat=2 * (n - 1), label="ring all-reduce step")]
    if op in ("reduce_scatter", "all_gather"):
        return [Phase(src, dst, chunk, repeat=n - 1, label=f"ring {op.replace('_', '-')} step")]
    raise ValueError(f"ring does not implement {op}")


class Ring(Algorithm):
    """Ring reduce-scatter / all-gather / all-reduce; chain broadcast / reduce."""

    name = "ring"
    ops = frozenset({"all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce"})
    summary = "ring over the group order: 2(n-1) steps of S/n (all-reduce); chain for broadcast/reduce"

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        return ring_phases(req.op, req.groups, req.size_bytes, req.root)
