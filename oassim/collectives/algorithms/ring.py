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

The C rings are not listed (C x n flows: 67 million for 16,384 ranks in domains of 4,096):
their flows on the same edge are one flow with the rings' bytes summed
(:func:`rail_ring_edges`), counted in closed form. Ring c uses every cyclic edge
``r[j] -> r[j+1]`` of a domain's ranks r (L of them) except the one into its entry position
``c mod L``, so that edge carries ``C - #{c < C : c = j+1 (mod L)}`` rings, and the crossings
``r_k[(c-1) mod L_k] -> r_{k+1}[c mod L_{k+1}]`` once each: O(n + C K) per group of K domains,
the same flows and bytes as listing the rings (tests/collectives/test_rail_ring_edges.py).
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.groups import domain_blocks, structure_memo
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase, ring_pairs

__all__ = ["ring_phases", "chain_phase", "rail_ring_orders", "rail_ring_edges", "Ring", "RailRings"]


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
    at position c modulo that domain's count, shape (G * C, n) with C the largest count.
    The listed definition :func:`rail_ring_edges` counts in closed form (its tests' reference)."""
    rings = []
    for doms in blocks:
        C = max(len(r) for r in doms)
        c = np.arange(C)
        # ring c takes domain r rotated left by c mod len(r): column i is r[(i + c) % len(r)]
        rings.append(np.concatenate([np.asarray(r)[(np.arange(len(r))[None, :] + (c % len(r))[:, None]) % len(r)]
                                     for r in doms], axis=1))
    return np.concatenate(rings)


def rail_ring_edges(blocks: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The distinct edges of the rings of :func:`rail_ring_orders` and how many rings use each,
    without listing the rings.

    Returns
    -------
    src, dst : ndarray of int64
        Distinct (src, dst) edges, sorted by ``src * span + dst`` (``span``: the largest rank + 1).
    count : ndarray of float64
        Rings through each edge.
    C : int
        Rings per group (the largest count of a group's ranks in one domain).
    """
    src, dst, cnt, Cs = [], [], [], set()
    for doms in blocks:
        lens = np.array([len(r) for r in doms], dtype=np.int64)
        C = int(lens.max())
        Cs.add(C)
        R = np.concatenate(doms)
        off = np.concatenate([[0], np.cumsum(lens)[:-1]])
        # in-domain cyclic edges j -> j+1 of every domain of two or more ranks
        inner = lens >= 2
        L = np.repeat(lens[inner], lens[inner])
        j = np.concatenate([np.arange(m) for m in lens[inner]]) if inner.any() else np.zeros(0, np.int64)
        base = np.repeat(off[inner], lens[inner])
        t = (j + 1) % L
        src.append(R[base + j])
        dst.append(R[base + t])
        cnt.append((C - (C // L + (t < C % L))).astype(np.float64))
        # crossings of ring c from domain k (its last rank) into domain k+1 (its entry rank)
        c = np.arange(C)[None, :]
        nxt = np.roll(np.arange(len(doms)), -1)
        src.append(R[off[:, None] + (c - 1) % lens[:, None]].ravel())
        dst.append(R[off[nxt][:, None] + c % lens[nxt][:, None]].ravel())
        cnt.append(np.ones(len(doms) * C))
    if len(Cs) > 1:
        raise ValueError("the groups have different numbers of rails")
    a, b, w = np.concatenate(src), np.concatenate(dst), np.concatenate(cnt)
    keep = w > 0
    a, b, w = a[keep], b[keep], w[keep]
    span = int(max(a.max(), b.max())) + 1 if len(a) else 1
    keys, at = np.unique(a * span + b, return_inverse=True)
    return keys // span, keys % span, np.bincount(at, weights=w, minlength=len(keys)), Cs.pop()


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
        src, dst, count, C = structure_memo("rail_ring_edges", req.groups, caps,
                                            lambda: _rail_edges(req.groups, caps))
        n = req.group_size
        if n < 2:
            return []
        chunk = req.size_bytes / C / n  # each ring carries S / C in chunks of S / (C n)
        repeat = 2 * (n - 1) if req.op == "all_reduce" else n - 1
        step = "ring all-reduce step" if req.op == "all_reduce" else f"ring {req.op.replace('_', '-')} step"
        # the C rings share every in-domain edge but one: one flow per distinct (src, dst)
        # with the rings' bytes summed loads the links exactly as C x n flows would
        return [Phase(src, dst, count * chunk, repeat, label=f"rail rings ({C}, same-edge flows merged): {step}")]


def _rail_edges(groups: np.ndarray, caps: FabricCaps):
    """Size-independent part of the rail rings of ``groups`` (memoised per fabric and groups):
    their distinct edges, how many rings use each, and the ring count."""
    blocks = domain_blocks(groups, caps)
    if isinstance(blocks, str):
        raise ValueError(blocks)
    return rail_ring_edges(blocks)
