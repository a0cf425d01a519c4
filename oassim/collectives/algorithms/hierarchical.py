"""Hierarchical collectives: reduce inside the scale-up domain, cross domains on rails.

What is modelled. A group's ranks are arranged by level (:func:`~oassim.collectives.groups.
level_tensor`): sub-domain (a server or cube inside the supernode, where the cluster has one),
domain, cluster. All-reduce of S (the 2D / hierarchical all-reduce of Horovod and of
Jia et al., "Highly scalable deep learning training system with mixed-precision", 2018):

1. reduce-scatter inside each innermost unit (m ranks): every rank holds S/m, reduced over
   its unit; then reduce-scatter across the units of a domain on aligned ranks;
2. all-reduce across domains among rail-aligned ranks (k of them, S/(ranks per domain) each):
   the only traffic that enters the scale-out fabric, spread over every rail at once;
3. all-gather back down the levels.

Reduce-scatter runs step 1 at every level including the outermost; all-gather runs step 3
from the outermost level in. Each level's step is a flat sub-collective over all the
sub-groups of that level at once (every domain's reduce-scatter is one phase), costed with the
inner / outer flat algorithm of the variant:

- ``hierarchical``: ring inside, ring across;
- ``hierarchical_tree``: ring inside, double binary tree across (all-reduce; the inter-domain
  latency grows with log k instead of k);
- ``hierarchical_in_network``: in-network reduction (NVLS) inside, ring across (needs
  reducing scale-up switches).

Uneven groups (domains holding different numbers of the group's ranks: a partial rack, a
node half used) keep the scheme for all-reduce (:func:`uneven_all_reduce_phases`): rank i of
a domain with m of the group's ranks reduce-scatters to byte range [i S/m, (i+1) S/m); the
cross-domain all-reduce runs on every byte range where one owner per domain is fixed (the
common refinement of the domains' splits), all at once. A domain with fewer ranks has fewer
NICs exporting a whole domain's share, so each of its NICs carries m_max / m times more:
the slowdown is the physics of the partial domain, not a fallback to a flat algorithm.

All-to-all has its own two-stage scheme (:mod:`~oassim.collectives.algorithms.all_to_all`).
The stages run one after another (no pipelining across levels), as the Horovod scheme does.

The ``_pipelined`` variants overlap the stages chunk by chunk, as NCCL's tree does when it
crosses nodes (each channel's data flows through the intra-node chain and the inter-node
tree at once; NCCL's multi-node *ring* is :class:`~oassim.collectives.algorithms.ring.
RailRings`, not a pipelined 2D ring): all the stages' flows, each carrying its bytes times its repeat count, form one
phase, so the busiest link's total sets the bandwidth term (the steady state of a perfect
pipeline), while a chunk still pays every stage's latency steps in turn.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from oassim.collectives.algorithms.all_to_all import (
    even_hierarchical_all_to_all_phases,
    hierarchical_all_to_all_phases,
)
from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.algorithms.halving_doubling import halving_doubling_phases
from oassim.collectives.algorithms.in_network import in_network_phases
from oassim.collectives.algorithms.ring import ring_phases
from oassim.collectives.algorithms.tree import tree_phases
from oassim.collectives.caps import FabricCaps
from oassim.collectives.groups import domain_blocks, level_tensor
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase

__all__ = ["FLAT", "hierarchical_phases", "uneven_all_reduce_phases", "pipelined", "Hierarchical",
           "MAX_PAIR_ENTRIES"]

MAX_PAIR_ENTRIES = 64_000_000

FLAT: dict[str, Callable[[str, np.ndarray, float], list[Phase]]] = {
    "ring": lambda op, g, s: ring_phases(op, g, s),
    "tree": lambda op, g, s: tree_phases(op, g, s),
    "halving_doubling": lambda op, g, s: halving_doubling_phases(op, g, s),
    "in_network": lambda op, g, s: in_network_phases(op, g, s),
}

_LEVEL = {1: "across domains", 2: "across sub-domains", 3: "inside"}


def _along(t: np.ndarray, axis: int) -> np.ndarray:
    """Sub-groups of ``t`` that vary along ``axis`` only, shape (-1, t.shape[axis])."""
    return np.moveaxis(t, axis, -1).reshape(-1, t.shape[axis])


def _labelled(phases: list[Phase], where: str) -> list[Phase]:
    return [Phase(p.src, p.dst, p.size_bytes, p.repeat, p.steps, p.in_network, f"{p.label} [{where}]",
                  p.switch_bytes) for p in phases]


def hierarchical_phases(op: str, t: np.ndarray, size: float, inner: str, outer: str) -> list[Phase]:
    """Phases of a hierarchical ``op`` over the level tensor ``t`` (G, k, j, q).

    Parameters
    ----------
    op : {"all_reduce", "reduce_scatter", "all_gather"}
    t : ndarray of int64, shape (G, k_domain, k_sub, m)
    size : float
        nccl-tests size, bytes.
    inner, outer : str
        Keys of :data:`FLAT` used inside domains and across the outermost level.
    """
    axes = [ax for ax in (3, 2, 1) if t.shape[ax] > 1]
    if not axes:
        return []
    ins, out_ax = axes[:-1], axes[-1]
    phases: list[Phase] = []
    s = float(size)
    if op == "all_reduce":
        for ax in ins:
            phases += _labelled(FLAT[inner]("reduce_scatter", _along(t, ax), s), _LEVEL[ax])
            s /= t.shape[ax]
        # a tree inside a scale-up domain runs as chains, as NCCL's does (see tree.py)
        top = ((lambda o, g, x: tree_phases(o, g, x, chains=True)) if outer == "tree" and out_ax != 1
               else FLAT[outer])
        phases += _labelled(top("all_reduce", _along(t, out_ax), s), _LEVEL[out_ax])
        for ax in reversed(ins):
            s *= t.shape[ax]
            phases += _labelled(FLAT[inner]("all_gather", _along(t, ax), s), _LEVEL[ax])
        return phases
    if op == "reduce_scatter":
        for ax in axes:
            kind = outer if ax == out_ax else inner
            phases += _labelled(FLAT[kind]("reduce_scatter", _along(t, ax), s), _LEVEL[ax])
            s /= t.shape[ax]
        return phases
    if op == "all_gather":
        s = s / float(np.prod([t.shape[ax] for ax in ins])) if ins else s
        phases += _labelled(FLAT[outer]("all_gather", _along(t, out_ax), s), _LEVEL[out_ax])
        for ax in reversed(ins):
            s *= t.shape[ax]
            phases += _labelled(FLAT[inner]("all_gather", _along(t, ax), s), _LEVEL[ax])
        return phases
    raise ValueError(f"hierarchical does not implement {op}")


def _inside_uneven(blocks: list[list[np.ndarray]], size: float, inner: str, op: str) -> list[Phase]:
    """Reduce-scatter (``op``) or all-gather inside every domain of uneven groups, one phase.

    A ring over m ranks moves (m-1) chunks of S/m per rank in m-1 steps; domains of different
    m run at once, so the steps are written out as one repetition carrying S(m-1)/m with m-1
    latency steps (the same cost as repeat m-1 of one chunk). NVLS sends S per rank (reduce-
    scatter) or receives it (all-gather) in one switch round trip."""
    src, dst, size_b = [], [], []
    steps, remote = 1, 0.0
    for doms in blocks:
        for r in doms:
            m = len(r)
            if m < 2:
                continue
            src.append(r)
            dst.append(np.roll(r, -1))
            size_b.append(np.full(m, size if inner == "in_network" else size * (m - 1) / m))
            steps = max(steps, m - 1)
            remote = max(remote, size * (m - 1) / m)
    if not src:
        return []
    what = op.replace("_", "-")
    if inner == "in_network":
        return [Phase(np.concatenate(src), np.concatenate(dst), np.concatenate(size_b), in_network=True,
                      switch_bytes=remote, label=f"in-network {what} [inside, uneven domains]")]
    return [Phase(np.concatenate(src), np.concatenate(dst), np.concatenate(size_b), steps=steps,
                  label=f"ring {what} [inside, uneven domains]")]


def _byte_ranges(blocks: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Owner ranks (R, K) and size fractions (R,) of the byte ranges where every domain's
    owner is fixed: rank i of a domain of m owns [i/m, (i+1)/m) of the buffer."""
    rows, frac = [], []
    for doms in blocks:
        ms = sorted({len(r) for r in doms})
        cuts = np.unique(np.round(np.concatenate([np.arange(m + 1) / m for m in ms]), 12))
        lo, hi = cuts[:-1], cuts[1:]
        mid = (lo + hi) / 2
        rows.append(np.stack([r[np.minimum((mid * len(r)).astype(np.int64), len(r) - 1)] for r in doms], axis=1))
        frac.append(hi - lo)
    return np.concatenate(rows), np.concatenate(frac)


def uneven_all_reduce_phases(blocks: list[list[np.ndarray]], size: float, inner: str, outer: str) -> list[Phase]:
    """Hierarchical all-reduce of groups whose domains hold different numbers of their ranks.

    Parameters
    ----------
    blocks : list of list of ndarray
        :func:`~oassim.collectives.groups.domain_blocks` of the groups (same domain count).
    size : float
        Bytes.
    inner, outer : str
        ``ring`` / ``in_network`` inside domains; a key of :data:`FLAT` across them.
    """
    phases = _inside_uneven(blocks, size, inner, "reduce_scatter")
    owners, frac = _byte_ranges(blocks)
    R, K = owners.shape
    if K > 1:
        # the flat algorithm on stand-in ids, then each flow mapped to its owners and scaled
        # by its byte range's share
        ids = np.arange(R * K, dtype=np.int64).reshape(R, K)
        flat = owners.ravel()
        for p in FLAT[outer]("all_reduce", ids, float(size)):
            phases.append(Phase(flat[p.src], flat[p.dst], p.size_bytes * frac[p.src // K], p.repeat, p.steps,
                                p.in_network, f"{p.label} [across domains, uneven]",
                                p.switch_bytes * float(frac.max())))
    return phases + _inside_uneven(blocks, size, inner, "all_gather")


def pipelined(phases: list[Phase], label: str) -> list[Phase]:
    """Overlap ``phases`` chunk by chunk: one phase carrying every flow's bytes x repeat, with
    the latency steps of all of them in sequence (see module docstring)."""
    if len(phases) < 2:
        return phases
    if any(p.in_network for p in phases):
        raise ValueError("in-network phases are not pipelined with point-to-point ones")
    return [Phase(
        np.concatenate([p.src for p in phases]),
        np.concatenate([p.dst for p in phases]),
        np.concatenate([p.size_bytes * p.repeat for p in phases]),
        steps=sum(p.repeat * p.steps for p in phases),
        label=label,
    )]


def _positions(groups: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Position in its group of each rank of ``ranks`` (G, ...), row by row."""
    G, n = groups.shape
    span = int(groups.max()) + 1
    order = np.argsort(groups, axis=1, kind="stable")
    keys = (np.take_along_axis(groups, order, axis=1) + np.arange(G)[:, None] * span).ravel()
    q = ranks.reshape(G, -1) + np.arange(G)[:, None] * span
    idx = np.searchsorted(keys, q.ravel()).reshape(G, -1) - np.arange(G)[:, None] * n
    return np.take_along_axis(order, idx, axis=1).reshape(ranks.shape)


class Hierarchical(Algorithm):
    """Hierarchical reduce-scatter / all-reduce / all-gather and two-stage all-to-all.

    Parameters
    ----------
    name : str
        Registry key.
    inner, outer : str
        Flat algorithms inside domains and across the outermost level (keys of :data:`FLAT`).
    ops : iterable of str
        Ops this variant implements.
    summary : str
    pipelined : bool
        Overlap the stages (one merged phase) instead of running them in turn.
    """

    def __init__(self, name: str, inner: str, outer: str, ops: frozenset[str], summary: str,
                 pipelined: bool = False):
        self.name = name  # type: ignore[misc]
        self.inner, self.outer = inner, outer
        self.pipelined = bool(pipelined)
        self.ops = frozenset(ops)  # type: ignore[misc]
        self.summary = summary  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Hierarchical({self.name!r}, inner={self.inner!r}, outer={self.outer!r})"

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        why = super().unsupported(req, caps)
        if why:
            return why
        t = level_tensor(req.groups, caps)
        if isinstance(t, str):
            return self._uneven_reason(req, caps, t)
        axes = [ax for ax in (3, 2, 1) if t.shape[ax] > 1]
        if self.inner == "in_network":
            if len(axes) < 2:
                return "the group has no level inside a domain to reduce in the network"
            if not caps.scaleup_inr:
                return (f"the scale-up switches ({caps.describe_inr('scale-up')}) have no in-network "
                        "reduction (NVLS/SHARP)")
        if self.pipelined and req.op == "all_to_all":
            return "the two-stage all-to-all is not pipelined"
        if req.op == "all_to_all" and (req.matrix is not None or req.blocks is not None) \
                and req.n_groups * req.group_size**2 > MAX_PAIR_ENTRIES:
            return (f"an all-to-all byte matrix of {req.n_groups} x {req.group_size}^2 entries is too large "
                    f"(limit {MAX_PAIR_ENTRIES:,})")
        if self.outer == "halving_doubling" and req.op != "all_reduce" and axes:
            k = t.shape[axes[-1]]
            if k & (k - 1):
                return f"halving-doubling across {k} units needs a power of two"
        return None

    def _uneven_reason(self, req: CollectiveRequest, caps: FabricCaps, why: str) -> str | None:
        """Why an uneven group cannot run (None: it can, by :func:`uneven_all_reduce_phases`)."""
        if req.op != "all_reduce":
            return f"{why} (uneven groups: all-reduce only)"
        blocks = domain_blocks(req.groups, caps)
        if isinstance(blocks, str):
            return blocks
        if self.inner == "in_network" and not caps.scaleup_inr:
            return (f"the scale-up switches ({caps.describe_inr('scale-up')}) have no in-network "
                    "reduction (NVLS/SHARP)")
        return None

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        t = level_tensor(req.groups, caps)
        if isinstance(t, str):
            blocks = domain_blocks(req.groups, caps)
            if req.op != "all_reduce" or isinstance(blocks, str):
                raise ValueError(t)
            phases = uneven_all_reduce_phases(blocks, req.size_bytes, self.inner, self.outer)
            if self.pipelined:
                return pipelined(phases, f"{self.name}: {len(phases)} stages overlapped chunk by chunk")
            return phases
        if req.op == "all_to_all":
            G, k = t.shape[:2]
            t2 = t.reshape(G, k, -1)
            if req.matrix is None and req.blocks is None:  # even: no byte matrix needed
                return even_hierarchical_all_to_all_phases(t2, req.size_bytes, caps)
            return hierarchical_all_to_all_phases(t2, _positions(req.groups, t2), req.pair_bytes(), caps)
        phases = hierarchical_phases(req.op, t, req.size_bytes, self.inner, self.outer)
        if self.pipelined:
            return pipelined(phases, f"{self.name}: {len(phases)} stages overlapped chunk by chunk")
        return phases
