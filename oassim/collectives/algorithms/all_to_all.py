"""All-to-all, even or uneven (MoE token routing): direct pairwise and hierarchical.

What is modelled. ``pair_bytes[g, i, j]`` is what position i of group g sends to position j
(an even all-to-all of size S sends S/n to everyone; the diagonal stays local).

- direct: every pair at once, one phase of n(n-1) flows per group (NCCL's all-to-all posts
  every send and receive together and lets the fabric share the links).
- hierarchical (two stages, as in DeepSpeed-MoE / Tutel's 2D all-to-all and DeepEP's
  NVLink-then-RDMA dispatch): ranks are arranged (domain d, position l). Stage 1, inside each
  domain: rank (d, i) sends to (d, l) everything it has for position l in *any* domain, so
  (d, l) collects its domain's traffic for rail l. Stage 2, across domains on rail-aligned
  ranks: (d, l) sends to (d', l) all its domain's data for (d', l). Cross-domain bytes are
  unchanged but travel as k(k-1) large rail-aligned flows per rail instead of n(n-1) small
  ones, and never cross rails in the scale-out fabric.

Large stages (more than ``AGGREGATE_ABOVE`` rank-to-rank flows) on fat-tree scale-outs are
sent as one flow per (rank, destination block) instead
(:mod:`~oassim.collectives.algorithms.all_to_all_blocks`: exact for even traffic, bounded for
uneven), or, for even and block traffic, one flow per leaf pair with the ranks behind a leaf
bundled (:mod:`~oassim.collectives.algorithms.all_to_all_bundles`), so a 16,384-rank
all-to-all costs about a second and a 131,072-rank one tens of seconds.

Conservation: direct delivers ``pair_bytes`` exactly; hierarchical delivers it with
forwarding, so every rank's received minus forwarded bytes equals its column sum (the tests
check both).
"""

from __future__ import annotations

import numpy as np

import oassim.collectives.algorithms.all_to_all_blocks as blocks_mod
from oassim.collectives.algorithms.all_to_all_blocks import (
    AGGREGATE_ABOVE,
    aggregated_all_to_all_phases,
    can_aggregate,
    single_stage_domains,
)
from oassim.collectives.algorithms.all_to_all_domains import quotient_phase
from oassim.collectives.caps import FabricCaps
from oassim.collectives.phases import Phase

MAX_RAIL_BLOCKS = 4096
"""Concurrent rail exchanges up to which stage 2 is costed as one group of block traffic."""

__all__ = ["direct_all_to_all_phases", "hierarchical_all_to_all_phases", "even_hierarchical_all_to_all_phases"]


def _phase(src: np.ndarray, dst: np.ndarray, size: np.ndarray, label: str) -> list[Phase]:
    keep = size.ravel() > 0
    if not keep.any():
        return []
    return [Phase(src.ravel()[keep], dst.ravel()[keep], size.ravel()[keep], label=label)]


def direct_all_to_all_phases(groups: np.ndarray, pair_bytes: np.ndarray) -> list[Phase]:
    """One phase with every (i -> j != i) flow of every group.

    Parameters
    ----------
    groups : ndarray of int64, shape (G, n)
    pair_bytes : ndarray of float64, shape (G, n, n)
        Diagonal ignored.
    """
    g = np.asarray(groups, dtype=np.int64)
    G, n = g.shape
    src = np.broadcast_to(g[:, :, None], (G, n, n))
    dst = np.broadcast_to(g[:, None, :], (G, n, n))
    size = np.array(pair_bytes, dtype=np.float64)
    idx = np.arange(n)
    size[:, idx, idx] = 0.0
    return _phase(src, dst, size, "direct all-to-all (every pair at once)")


def _rail_exchange(tensor: np.ndarray, caps: FabricCaps | None, per_pair: float | None,
                   pair_bytes: np.ndarray | None) -> list[Phase] | None:
    """Stage 2 aggregated per (rank, destination block) when it is large and the fabric allows
    (:mod:`~oassim.collectives.algorithms.all_to_all_blocks`); None: list the flows."""
    G, k, m = tensor.shape
    if caps is None or not can_aggregate(caps) or G * m * k * (k - 1) <= AGGREGATE_ABOVE:
        return None
    rails = tensor.transpose(0, 2, 1).reshape(G * m, k)
    label = "hierarchical all-to-all: rail-aligned exchange across domains (aggregated per rank and block)"
    if pair_bytes is None and G * m <= MAX_RAIL_BLOCKS and blocks_mod.BUNDLE_LEAVES:
        # even: the concurrent rail exchanges are one group of block traffic (a block per
        # rail, bytes only inside a block), so the ranks behind a leaf bundle across rails
        B = G * m
        out = aggregated_all_to_all_phases(rails.ravel()[None], caps, label=label,
                                           block_of=np.repeat(np.arange(B), k)[None],
                                           block_bytes=(np.eye(B) * per_pair)[None])
        if out is not None:
            return out
    return aggregated_all_to_all_phases(rails, caps, per_pair, pair_bytes,
                                        label=label)


def even_hierarchical_all_to_all_phases(tensor: np.ndarray, size: float,
                                        caps: FabricCaps | None = None) -> list[Phase]:
    """The two stages of an even all-to-all (every rank sends ``size / n`` to each other rank)
    without the (G, n, n) byte matrix: stage 1 moves ``k size / n`` from (d, i) to each (d, l),
    l != i; stage 2 moves ``m size / n`` from (d, l) to each (e, l), e != d. Equal to
    :func:`hierarchical_all_to_all_phases` with the even matrix (the tests hold them together),
    so it scales to 10^4-rank groups.

    Parameters
    ----------
    tensor : ndarray of int64, shape (G, k, m)
        Ranks: ``tensor[g, d, l]`` is position l of domain d of group g.
    size : float
        nccl-tests size of the all-to-all (bytes each rank sends in all), bytes.
    caps : FabricCaps, optional
        Given, a large stage 2 is aggregated per (rank, destination block).
    """
    G, k, m = tensor.shape
    per_pair = size / (k * m)
    out: list[Phase] = []
    if m > 1 and caps is not None and single_stage_domains(caps) and G * k * m * (m - 1) > AGGREGATE_ABOVE:
        # one-stage switched domains: a rank's ports carry its total whatever the destinations,
        # so one flow to the next rank of its domain stands for its m - 1 (exact, as in
        # all_to_all_blocks._domain_flows)
        src = tensor
        dst = np.roll(tensor, -1, axis=2)
        out.append(Phase(src.ravel(), dst.ravel(), np.full(src.size, (m - 1) * k * per_pair),
                         label="hierarchical all-to-all: gather by rail inside the domain (one flow per rank)",
                         count=np.full(src.size, float(m - 1))))
    elif m > 1 and caps is not None and G * k * m * (m - 1) > AGGREGATE_ABOVE and (q := quotient_phase(
            tensor, caps, k * per_pair, "hierarchical all-to-all: gather by rail inside the domain "
                                        "(symmetric domains from one source each)")) is not None:
        out.append(q)
    elif m > 1:
        off = ~np.eye(m, dtype=bool)
        src = np.broadcast_to(tensor[:, :, :, None], (G, k, m, m))[:, :, off]
        dst = np.broadcast_to(tensor[:, :, None, :], (G, k, m, m))[:, :, off]
        out.append(Phase(src.ravel(), dst.ravel(), np.full(src.size, k * per_pair),
                         label="hierarchical all-to-all: gather by rail inside the domain"))
    agg = _rail_exchange(tensor, caps, m * per_pair, None) if k > 1 else None
    if agg is not None:
        out += agg
    elif k > 1:
        off = ~np.eye(k, dtype=bool)
        src = np.broadcast_to(tensor.transpose(0, 2, 1)[:, :, :, None], (G, m, k, k))[:, :, off]
        dst = np.broadcast_to(tensor.transpose(0, 2, 1)[:, :, None, :], (G, m, k, k))[:, :, off]
        out.append(Phase(src.ravel(), dst.ravel(), np.full(src.size, m * per_pair),
                         label="hierarchical all-to-all: rail-aligned exchange across domains"))
    return out


def hierarchical_all_to_all_phases(tensor: np.ndarray, pos: np.ndarray, pair_bytes: np.ndarray,
                                   caps: FabricCaps | None = None) -> list[Phase]:
    """Two-stage all-to-all over a (G, k, m) arrangement (domain, position in domain).

    Parameters
    ----------
    tensor : ndarray of int64, shape (G, k, m)
        Ranks: ``tensor[g, d, l]`` is position l of domain d of group g.
    pos : ndarray of int64, shape (G, k, m)
        Each of those ranks' position in its group (index into ``pair_bytes``).
    pair_bytes : ndarray of float64, shape (G, n, n)
        Bytes position i sends to position j (diagonal ignored).
    caps : FabricCaps, optional
        Given, a large stage 2 is aggregated per (rank, destination block).
    """
    G, k, m = tensor.shape
    gi = np.arange(G)[:, None, None]
    p = pos.reshape(G, k * m)
    # M[g, d, i, e, l]: bytes from (d, i) to (e, l), in the arrangement's order
    M = pair_bytes[gi, p[:, :, None], p[:, None, :]].reshape(G, k, m, k, m).copy()
    ii = np.arange(k * m)
    M.reshape(G, k * m, k * m)[:, ii, ii] = 0.0
    out: list[Phase] = []
    if m > 1:
        # stage 1: (d, i) -> (d, l) carries everything from (d, i) for rail l, any domain
        a = M.sum(axis=3)  # (G, d, i, l)
        li = np.arange(m)
        a[:, :, li, li] = 0.0
        src = np.broadcast_to(tensor[:, :, :, None], (G, k, m, m))
        dst = np.broadcast_to(tensor[:, :, None, :], (G, k, m, m))
        out += _phase(src, dst, a, "hierarchical all-to-all: gather by rail inside the domain")
    if k > 1:
        # stage 2: (d, l) -> (e, l), e != d, carries domain d's data for (e, l)
        b = M.sum(axis=2).transpose(0, 1, 3, 2)  # (G, d, l, e)
        di = np.arange(k)
        b[:, di, :, di] = 0.0
        agg = _rail_exchange(tensor, caps, None, b.transpose(0, 2, 1, 3).reshape(G * m, k, k))
        if agg is not None:
            return out + agg
        src = np.broadcast_to(tensor[:, :, :, None], (G, k, m, k))
        dst = np.broadcast_to(tensor.transpose(0, 2, 1)[:, None, :, :], (G, k, m, k))
        out += _phase(src, dst, b, "hierarchical all-to-all: rail-aligned exchange across domains")
    return out
