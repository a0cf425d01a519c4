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

Rail rings (``rail_rings``, NCCL's multi-node ring all-reduce / reduce-scatter / all-gather):
NCCL runs one ring per channel, as many channels as a node has NICs (one per GPU on DGX and
NVL72 nodes), each ring through every rank, entering each domain at a different rank so that
every NIC carries one ring's crossing. Ring c visits each domain's ranks starting at
position c (mod the domain's count) and carries S/C of the buffer. Per rank the NVLink bytes
are those of one ring, and each NIC carries ``2 (n - 1) / n * S / C``: the bus bandwidth of a
node-bound ring is C NIC rates (8 x 24 = 192 GB/s on DGX A100, calibration source S22, nccl#812;
8 x 47.5 = 380 on DGX H100, S21). A domain holding fewer of the group's ranks than C has
each of its NICs carry several rings.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.groups import domain_blocks
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase, ring_pairs

__all__ = ["ring_phases", "chain_phase", "rail_ring_orders", "Ring", "RailRings"]


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


def rail_ring_orders(blocks: list[list[np.ndarray]]) -> np.ndarray:
    """The rings of every group: ring c of group g visits each of its domains' ranks starting
    at position c modulo that domain's count, shape (G * C, n) with C the largest count."""
    rings = []
    for doms in blocks:
        C = max(len(r) for r in doms)
        c = np.arange(C)
        # ring c takes domain r rotated left by c mod len(r): column i is r[(i + c) % len(r)]
        rings.append(np.concatenate([np.asarray(r)[(np.arange(len(r))[None, :] + (c % len(r))[:, None]) % len(r)]
                                     for r in doms], axis=1))
    return np.concatenate(rings)


class RailRings(Algorithm):
    """NCCL's multi-node rings: one ring per rail (channel), each through every rank."""

    name = "rail_rings"
    ops = frozenset({"all_reduce", "reduce_scatter", "all_gather"})
    summary = "one ring per rail, each through every rank and crossing domains on its own NIC (NCCL multi-node ring)"

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        why = super().unsupported(req, caps)
        if why:
            return why
        blocks = domain_blocks(req.groups, caps)
        if isinstance(blocks, str):
            return blocks
        if len(blocks[0]) < 2:
            return "the group is inside one domain (rail rings are the plain ring there)"
        if len({max(len(r) for r in doms) for doms in blocks}) > 1:
            return "the groups have different numbers of rails"
        return None

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        blocks = domain_blocks(req.groups, caps)
        if isinstance(blocks, str):
            raise ValueError(blocks)
        rings = rail_ring_orders(blocks)
        C = len(rings) // len(blocks)
        out = []
        for p in ring_phases(req.op, rings, req.size_bytes / C):
            # the C rings share every in-domain edge but one: one flow per distinct (src, dst)
            # with the rings' bytes summed loads the links exactly as C x n flows would
            span = int(max(p.src.max(), p.dst.max())) + 1
            keys, at = np.unique(p.src * span + p.dst, return_inverse=True)
            size = np.bincount(at, weights=p.size_bytes, minlength=len(keys))
            out.append(Phase(keys // span, keys % span, size, p.repeat, p.steps,
                             label=f"rail rings ({C}, same-edge flows merged): {p.label}"))
        return out
