"""All-to-all without n x n flows: one flow per (rank, destination block).

What is modelled. On a fat-tree scale-out every switch link beyond a rank's leaf is shared by
all ranks behind that leaf, so the switch links see an all-to-all only through its totals per
(source rank, destination leaf). Blocks are the group's ranks behind one leaf in the source's
own pod, and the group's ranks of one pod for every other pod (three-tier fat-trees; with two
tiers every block is a leaf). Rank ``i`` sends one flow to each block ``B``, carrying what it
sends to all of ``B`` outside its own domain (``count`` = the rank-to-rank flows it stands
for). Members are ordered by (position in domain, domain); the flow goes to the member at
``i``'s own position in its pod (pod blocks) or one past its position in its leaf (leaf
blocks), swapped with another source's where that member shares ``i``'s domain; a block larger than the
source's own leaf or pod is taken in chunks of that size, one flow each. Ranks of the
same domain exchange over the scale-up links in the same phase: in whole torus, full-mesh and
two-level (``clos2``) domains with even traffic inside, as one source's flows standing for all
(:mod:`~oassim.collectives.algorithms.all_to_all_domains`), otherwise rank to rank there, and in
one-stage switched domains (NVSwitch) as one flow to the next
rank of the domain standing for all of them, which loads every rank's ports exactly as the
pairs do. Flows: about
``n (leaves per pod + pods + 1)`` per group instead of ``n (n - 1)`` (one-stage domains);
16,384 H100 ranks (512 leaves in 16 pods) give 786 k flows instead of 268 M. Even traffic
and traffic given per (source block, destination block) go one level further by default
(``BUNDLE_LEAVES``): one flow per leaf pair, the ranks behind a leaf bundled
(:mod:`~oassim.collectives.algorithms.all_to_all_bundles`); this module's per-rank flows
remain for a byte matrix (whose memory grows as n^2) and where the bundling does not apply.

Exactness (analytical model, adaptive routing, where the models cost equal-cost link groups as
one link: :mod:`oassim.network.routing_modes`). Source NIC links, leaf uplink groups, pod
uplink groups and the core links into a pod carry exactly the bytes of the n x n flows, for
any traffic. With even traffic and blocks of equal size the rotation is a bijection between
equal blocks, so every destination NIC link and every spine-to-leaf group also carries
exactly its n x n load: the phase time is exact. Uneven traffic (a byte matrix) can differ
only on destination-side links: destination rank ``d`` receives ``A_d`` (the block totals of
the sources mapped to it) instead of its column sum ``D_d``, so each destination NIC link
and each spine-to-leaf group carries at most ``sum |A_d - D_d|`` over the ranks behind it
more or less, and the phase time differs from the n x n time by at most that over the link's
capacity (:func:`destination_error_bytes` gives the per-rank ``A_d - D_d``; the tests hold
the time to it). Under static ECMP the aggregated flows cannot be hashed one by one: the
groups carry their mean load times the expected hashing excess of the real flow count
(:func:`~oassim.network.routing_modes.ecmp_excess`).
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.caps import FabricCaps
from oassim.collectives.phases import Phase

__all__ = ["AGGREGATE_ABOVE", "can_aggregate", "aggregated_all_to_all_phases", "destination_error_bytes",
           "single_stage_domains"]

AGGREGATE_ABOVE = 250_000
"""Rank-to-rank flows above which an all-to-all stage is aggregated (where the fabric allows)."""

MAX_IMPLIED_ENTRIES = 25_000_000
"""Block traffic that cannot be bundled is costed per (rank, block) from its implied byte
matrix up to this many entries; beyond, :func:`aggregated_all_to_all_phases` returns None."""

BUNDLE_LEAVES = True
"""Aggregate the sources (and destinations) behind one leaf too, for even and block traffic
(:mod:`~oassim.collectives.algorithms.all_to_all_bundles`); False: one flow per (rank, block)."""


def can_aggregate(caps: FabricCaps) -> bool:
    """The fabric records the leaf of every rank (a fat-tree scale-out)."""
    return caps.leaf_of_rank is not None


def _ordered(keys: np.ndarray, local: np.ndarray, dom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entries sorted by (key, position in domain, domain), and each one's position within its
    key in that order: consecutive members of a block then lie in different domains."""
    order = np.lexsort((dom, local, keys))
    sk = keys[order]
    start = np.searchsorted(sk, sk, side="left")
    pos = np.empty(len(keys), dtype=np.int64)
    pos[order] = np.arange(len(keys)) - start
    return order, pos


def _rotate(members: np.ndarray, start: np.ndarray, src_dom: np.ndarray, dom: np.ndarray,
            src_unit: np.ndarray) -> np.ndarray:
    """Member ``start mod |B|`` of the block for each source; where that member shares the
    source's domain (it is reached over the scale-up links), the source swaps targets with
    another source of its unit (leaf or pod), so that the map from each unit stays as balanced
    as the rotation (a bijection stays one)."""
    at = start % len(members)
    target_dom = dom[members[at]]
    for i in np.flatnonzero(target_dom == src_dom):
        if target_dom[i] != src_dom[i]:
            continue  # fixed by an earlier swap
        ok = (target_dom != src_dom[i]) & (src_dom != target_dom[i]) & (src_unit == src_unit[i])
        j = np.flatnonzero(ok)
        if len(j):
            j = j[0]
            at[i], at[j] = at[j], at[i]
        else:  # no partner: the next member outside the domain
            k = at[i]
            while dom[members[k]] == src_dom[i]:
                k = (k + 1) % len(members)
            at[i] = k
        target_dom = dom[members[at]]
    return members[at]


def _plan(ranks: np.ndarray, caps: FabricCaps):
    """Yield ``(sources, destination, members, outside)`` per destination block of one group:
    source positions, each one's destination position, the block's positions and how many of
    them lie outside each source's domain."""
    leaf = caps.leaf_of_rank[ranks]
    dom = caps.domain_of_rank[ranks]
    pod = caps.pod_of_rank[ranks] if caps.pod_of_rank is not None else np.zeros(len(ranks), dtype=np.int64)
    if len(np.unique(pod)) == 1:
        pod = np.zeros(len(ranks), dtype=np.int64)
    local = caps.local_of_rank[ranks]
    by_leaf, pos_leaf = _ordered(leaf, local, dom)
    by_pod, pos_pod = _ordered(pod, local, dom)
    unit_leaf = np.bincount(np.unique(leaf, return_inverse=True)[1])[np.unique(leaf, return_inverse=True)[1]]
    unit_pod = np.bincount(np.unique(pod, return_inverse=True)[1])[np.unique(pod, return_inverse=True)[1]]
    blocks = [(m, pos_leaf, unit_leaf, True) for m in np.split(by_leaf, np.flatnonzero(np.diff(leaf[by_leaf])) + 1)]
    if len(np.unique(pod)) > 1:
        blocks += [(m, pos_pod, unit_pod, False) for m in np.split(by_pod, np.flatnonzero(np.diff(pod[by_pod])) + 1)]
    for members, pos, unit, is_leaf in blocks:
        same_pod = pod == pod[members[0]]
        every = np.flatnonzero(same_pod if is_leaf else ~same_pod)
        # a source's unit (its leaf or pod) may be smaller than the block: it then sends to
        # each chunk of the block of its unit's size, so that a unit covers every member
        for size in np.unique(unit[every]):
            for lo in range(0, len(members), int(size)):
                chunk = members[lo:lo + int(size)]
                srcs = every[unit[every] == size]
                doms, per_dom = np.unique(dom[chunk], return_counts=True)
                at = np.clip(np.searchsorted(doms, dom[srcs]), 0, len(doms) - 1)
                outside = len(chunk) - np.where(doms[at] == dom[srcs], per_dom[at], 0)
                has = outside > 0
                srcs, outside = srcs[has], outside[has]
                if not len(srcs):
                    continue
                # leaf blocks of the own pod: one position on, so that the own leaf never
                # maps a rank to itself and a rail-aligned leaf never to the rank's own domain
                # (members alternate domains); a translation, hence a bijection between equal
                # blocks
                src_unit = (leaf if is_leaf else pod)[srcs]
                yield srcs, _rotate(chunk, pos[srcs] + int(is_leaf), dom[srcs], dom, src_unit), chunk, outside


def _block_bytes(m: np.ndarray, srcs: np.ndarray, members: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Bytes each source sends to the block's members outside its own domain."""
    outside = dom[srcs][:, None] != dom[members][None, :]
    return (m[np.ix_(srcs, members)] * outside).sum(axis=1)


def single_stage_domains(caps: FabricCaps) -> bool:
    """Scale-up domains of one switch stage (NVSwitch-style: every rank one hop from every
    other through the same switch chips), where a rank's traffic to its domain aggregates
    exactly too."""
    return caps.sub_of_rank is None and caps.grid is None


def _domain_bytes(m: np.ndarray, i: np.ndarray, ranks: np.ndarray, caps: FabricCaps) -> np.ndarray:
    """What each source position of :func:`_domain_flows` sends inside its domain."""
    if not single_stage_domains(caps):
        j = _domain_pairs(ranks, caps)[1]
        return m[i, j]
    dom = caps.domain_of_rank[ranks]
    same = dom[i][:, None] == dom[None, :]
    return (m[i] * same).sum(axis=1)


def _domain_flows(ranks: np.ndarray, caps: FabricCaps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flows inside domains: ``(source, destination, count)`` positions. One-stage switched
    domains: one flow per rank to the next of its domain (a bijection) standing for all its
    domain's ranks; other domains (meshes, tori, two-level supernodes): every pair."""
    if not single_stage_domains(caps):
        i, j = _domain_pairs(ranks, caps)
        return i, j, np.ones(len(i))
    dom = caps.domain_of_rank[ranks]
    order, pos = _ordered(dom, caps.local_of_rank[ranks], dom)
    sizes = np.bincount(np.unique(dom, return_inverse=True)[1])
    size_of = sizes[np.unique(dom, return_inverse=True)[1]]
    first = np.searchsorted(dom[order], dom, side="left")
    keep = size_of > 1
    i = np.flatnonzero(keep)
    j = order[first[i] + (pos[i] + 1) % size_of[i]]
    return i, j, (size_of[i] - 1).astype(np.float64)


def _domain_pairs(ranks: np.ndarray, caps: FabricCaps) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i, j), i != j, of the group's ranks that share a domain (sent one by one)."""
    dom = caps.domain_of_rank[ranks]
    order = np.argsort(dom, kind="stable")
    sd = dom[order]
    cut = np.flatnonzero(np.diff(sd)) + 1
    src, dst = [], []
    for blk in np.split(order, cut):
        if len(blk) > 1:
            a, b = np.meshgrid(blk, blk, indexing="ij")
            off = a != b
            src.append(a[off])
            dst.append(b[off])
    if not src:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(src), np.concatenate(dst)


def _domain_block_bytes(ranks: np.ndarray, caps: FabricCaps, i: np.ndarray, blk: np.ndarray,
                        W: np.ndarray) -> np.ndarray:
    """:func:`_domain_bytes` for traffic given by blocks (``W[a, b]`` per rank pair)."""
    dom = caps.domain_of_rank[ranks]
    if not single_stage_domains(caps):
        j = _domain_pairs(ranks, caps)[1]
        return W[blk[i], blk[j]]
    B = W.shape[0]
    du, di = np.unique(dom, return_inverse=True)
    cnt = np.bincount(di * B + blk, minlength=len(du) * B).reshape(len(du), B).astype(np.float64)
    return np.einsum("ij,ij->i", cnt[di[i]], W[blk[i]]) - W[blk[i], blk[i]]


def _bundle_domains(ranks, caps, i, j, b, c):
    """The per-rank flows inside one-stage switched domains as one flow per domain, from its
    first rank to that rank's successor, with the domain's ports bundled (exact for even
    traffic: every rank's ports carry its domain's mean)."""
    from oassim.collectives.algorithms.all_to_all_bundles import _EMPTY, EndpointBundles

    dom = caps.domain_of_rank[ranks[i]]
    du, first, inv = np.unique(dom, return_index=True, return_inverse=True)
    members = np.split(i[np.argsort(inv, kind="stable")], np.cumsum(np.bincount(inv))[:-1])
    a, z = i[first], j[first]
    up = EndpointBundles(_EMPTY, (), _EMPTY, (), ranks[a], tuple(ranks[m] for m in members), ranks[z],
                         tuple(ranks[m] for m in members))
    return a, z, np.bincount(inv, weights=b), np.bincount(inv, weights=c), up


def aggregated_all_to_all_phases(groups: np.ndarray, caps: FabricCaps, per_pair: float | None = None,
                                 pair_bytes: np.ndarray | None = None,
                                 label: str = "aggregated all-to-all (one flow per rank and block)",
                                 block_of: np.ndarray | None = None, block_bytes: np.ndarray | None = None,
                                 bundle: bool | None = None) -> list[Phase] | None:
    """One phase of aggregated cross-domain flows for every group at once, plus the
    rank-to-rank flows inside each domain (scale-up links, not aggregated).

    Even traffic and block traffic are bundled per (source leaf, destination leaf)
    (:mod:`~oassim.collectives.algorithms.all_to_all_bundles`) where ``BUNDLE_LEAVES`` (or
    ``bundle``) says so and the group allows it; otherwise, and for a byte matrix, one flow per
    (rank, destination block).

    Parameters
    ----------
    groups : ndarray of int64, shape (G, n)
    caps : FabricCaps
        With ``leaf_of_rank`` (see :func:`can_aggregate`).
    per_pair : float, optional
        Even traffic: bytes every rank sends to every other rank of its group.
    pair_bytes : ndarray of float64, shape (G, n, n), optional
        Uneven traffic: bytes position i sends to position j (diagonal ignored).
    label : str
    block_of : ndarray of int64, shape (G, n), optional
        Block traffic: each position's traffic block ...
    block_bytes : ndarray of float64, shape (G, B, B), optional
        ... and the bytes each rank of block a sends to each rank of block b.
    bundle : bool, optional
        Override ``BUNDLE_LEAVES``.

    Returns None for block traffic that cannot be bundled on a group above
    ``MAX_IMPLIED_ENTRIES`` rank pairs.
    """
    from oassim.collectives.algorithms.all_to_all_bundles import _EMPTY, EndpointBundles, leaf_bundled_flows
    from oassim.collectives.algorithms.all_to_all_domains import quotient_flows, uniform_quotient_positions

    g = np.asarray(groups, dtype=np.int64)
    G, n = g.shape
    if per_pair is not None and pair_bytes is None and block_of is None:
        block_of = np.zeros((G, n), dtype=np.int64)
        block_bytes = np.full((G, 1, 1), float(per_pair))
    use_bundles = BUNDLE_LEAVES if bundle is None else bundle
    src, dst, size, count = [], [], [], []
    bundles: list[EndpointBundles] = []
    q_ranks: list[np.ndarray] = []
    q_bytes: list[np.ndarray] = []
    cross = can_aggregate(caps)
    for gi, ranks in enumerate(g):
        m = None
        if pair_bytes is not None:
            m = np.array(pair_bytes[gi], dtype=np.float64)
            np.fill_diagonal(m, 0.0)
        elif block_of is None:
            raise ValueError("aggregated all-to-all needs per_pair, pair_bytes or blocks")
        blk, W = (block_of[gi], block_bytes[gi]) if m is None else (None, None)
        planned = leaf_bundled_flows(ranks, caps, blk, W) if (m is None and use_bundles and cross) else None
        if not cross:  # no fat-tree scale-out: only groups inside one domain can be aggregated
            if np.any(caps.domain_of_rank[ranks] != caps.domain_of_rank[ranks[0]]):
                raise ValueError("aggregated all-to-all across domains needs a fat-tree scale-out")
        elif planned is not None:
            s, d, b, c, bun = planned
            src.append(ranks[s])
            dst.append(ranks[d])
            size.append(b)
            count.append(c)
            bundles.append(bun)
        else:
            even = m is None and W.shape == (1, 1)
            if m is None and not even and n * n > MAX_IMPLIED_ENTRIES:
                return None  # the caller falls back (or says why it cannot)
            if m is None and not even:  # per (rank, block) from the blocks: the implied byte matrix
                m = W[blk[:, None], blk[None, :]]
                np.fill_diagonal(m, 0.0)
            for s, d, members, outside in _plan(ranks, caps):
                c = outside.astype(np.float64)
                b = c * W[0, 0] if even else _block_bytes(m, s, members, caps.domain_of_rank[ranks])
                keep = b > 0
                src.append(ranks[s[keep]])
                dst.append(ranks[d[keep]])
                size.append(b[keep])
                count.append(c[keep])
        qpos = uniform_quotient_positions(ranks, caps, blk) if m is None and use_bundles else ()
        if len(qpos):  # full symmetric domains: one source's flows stand for all (all_to_all_domains)
            rest = np.setdiff1d(np.arange(n), qpos)
            ii, jj = _domain_pairs(ranks[rest], caps)
            i, j, c = rest[ii], rest[jj], np.ones(len(ii))
            b = W[blk[i], blk[j]]
            q_ranks.append(ranks[qpos])
            q_bytes.append(W[blk[qpos], blk[qpos]])
        else:
            i, j, c = _domain_flows(ranks, caps)
            b = _domain_bytes(m, i, ranks, caps) if m is not None and blk is None else \
                _domain_block_bytes(ranks, caps, i, blk, W)
        if planned is not None and single_stage_domains(caps) and len(i):
            i, j, b, c, up = _bundle_domains(ranks, caps, i, j, b, c)
            bundles.append(up)
        keep = b > 0
        src.append(ranks[i[keep]])
        dst.append(ranks[j[keep]])
        size.append(b[keep])
        count.append(c[keep])
    if q_ranks:
        qr = np.concatenate(q_ranks)
        s, d, b, quotients = quotient_flows(qr, caps, np.arange(len(qr)), np.concatenate(q_bytes))
        src.append(s)
        dst.append(d)
        size.append(b)
        count.append(np.ones(len(s)))
        bundles.append(EndpointBundles(_EMPTY, (), _EMPTY, (), domains=tuple(quotients)))
    if not sum(len(x) for x in src):
        return []
    merged = None
    if bundles:
        merged = EndpointBundles.merge(bundles)
        if any(len(x.send_rep) or len(x.up_send_rep) for x in bundles):
            label = label.replace("per rank and block", "per leaf pair")
        if q_ranks:
            label += "; symmetric domains costed from one source each"
    return [Phase(np.concatenate(src), np.concatenate(dst), np.concatenate(size), label=label,
                  count=np.concatenate(count), bundles=merged)]


def destination_error_bytes(groups: np.ndarray, caps: FabricCaps, pair_bytes: np.ndarray) -> np.ndarray:
    """``A_d - D_d`` per position (G, n): bytes the aggregated phase delivers to each rank minus
    what the n x n all-to-all delivers (its column sum); zero for even traffic on equal blocks."""
    g = np.asarray(groups, dtype=np.int64)
    out = np.zeros(g.shape)
    for gi, ranks in enumerate(g):
        m = np.array(pair_bytes[gi], dtype=np.float64)
        np.fill_diagonal(m, 0.0)
        for s, d, members, _ in _plan(ranks, caps):
            np.add.at(out[gi], d, _block_bytes(m, s, members, caps.domain_of_rank[ranks]))
        i, j, _ = _domain_flows(ranks, caps)
        np.add.at(out[gi], j, _domain_bytes(m, i, ranks, caps))
        out[gi] -= m.sum(axis=0)
    return out
