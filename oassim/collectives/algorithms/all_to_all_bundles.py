"""All-to-all with the ranks behind one leaf bundled: flows per (source leaf, destination leaf).

What is modelled. On a fat-tree scale-out every switch link beyond a rank's NIC is shared by
all the ranks behind its leaf, so the switch links see an all-to-all only through its totals
per (source leaf, destination leaf); the NIC links of the ranks behind a leaf see it through
each rank's own totals. This module sends, per group:

- one flow per (source leaf ``L``, destination leaf ``M``) of the same pod, carrying what the
  ranks of ``L`` send to the ranks of ``M`` outside their own domain;
- for every other pod ``Q``, the bytes of ``L`` for all of ``Q`` cut into pieces laid onto
  ``Q``'s leaves in proportion to what each of them receives from outside ``Q`` (water
  filling over the source leaves in order: a source leaf meets at most a few destination
  leaves, so about ``leaves + leaves per pod`` pieces per destination pod);
- the flows inside each scale-up domain as the per-rank aggregation sends them, and in
  one-stage switched (NVSwitch-style) domains one flow per domain whose representative's
  switch ports stand for the domain's (``EndpointBundles.up_*``).

Each leaf has one *send representative* (every flow out of ``L`` starts there) and one
*receive representative* (every flow into ``M`` ends there), in different domains. A flow
stands for every source rank of its leaf: the phase carries :class:`EndpointBundles`, and the
engine costs it with each representative's NIC links (accelerator to NIC, NIC to leaf on the
send side; leaf to NIC, NIC to accelerator on the receive side) standing for all its leaf's
NIC links, as one virtual link of their summed capacity (:func:`bundled_transfer`), then
shares the bundle's bytes over those links in proportion to capacity. Flows: about
``leaves x (leaves per pod + pods)`` per group, independent of the ranks behind a leaf:
16,384 H100 ranks (512 leaves of 32 ranks, 16 pods) list 24 k aggregated flows instead of
786 k per (rank, block) and 268 M rank pairs.

Exactness (analytical model, adaptive routing: :mod:`oassim.network.routing_modes` costs each
equal-cost group as one link). Every switch link group carries exactly its n x n load, for any
traffic given as a block matrix: the leaf uplink groups carry each leaf's total out of the
leaf, the pod uplink and core-to-pod groups each pod's totals, and the spine-to-leaf groups
each destination leaf's total from other leaves (own-pod flows per leaf pair, other pods by the
water filling). A NIC bundle carries its leaf's total, so each of its links carries the leaf's
mean; with even traffic and equal domains every rank behind a leaf sends and receives the same
bytes across domains (``S (n - d) / n``) and the loads inside the leaf are symmetric: the mean
*is* each link's n x n load and the phase time is exact. Otherwise (uneven blocks, partial
domains) only the bundled endpoint links can differ: each NIC link by at most its rank's
cross-domain deviation from its leaf's mean (:func:`nic_deviation_bytes`), each scale-up port
by its rank's intra-domain deviation from its domain's mean over the port's share, so the
phase time differs from the n x n time by at most the largest such deviation over its link's
capacity; the tests hold block traffic to the NIC term (the scale-up term is the larger only
where the domain's ports are the bottleneck). The ``flow`` model is not exact with bundles:
max-min shares a link per flow, not per rank pair, so bundled flows of unequal sizes finish
apart (+6% on the tests' 3-tier fabric, 0 on the 2-tier one and at 16,384 H100 ranks). Under
static ECMP the flows carry their rank-pair counts for the hashing excess
(:func:`~oassim.network.routing_modes.ecmp_excess`), as the per-rank aggregation does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from oassim.collectives.caps import FabricCaps

__all__ = ["EndpointBundles", "leaf_bundled_flows", "bundled_transfer", "block_pair_totals", "nic_deviation_bytes"]


_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class EndpointBundles:
    """Ranks whose endpoint links one representative's stand for, per side and level.

    Attributes
    ----------
    send_rep, recv_rep : ndarray of int64, shape (k,)
        Representative ranks of NIC bundles (their NIC links stand for their leaf's).
    send_members, recv_members : tuple of ndarray of int64
        The ranks each representative stands for (itself included).
    up_send_rep, up_recv_rep, up_send_members, up_recv_members
        The same for scale-up bundles (a one-stage switched domain: a representative's ports
        to the switch chips stand for its domain's).
    domains : tuple of DomainQuotient
        Symmetric full domains whose representative source's flows stand for every source's
        (:mod:`~oassim.collectives.algorithms.all_to_all_domains`).
    """

    send_rep: np.ndarray
    send_members: tuple
    recv_rep: np.ndarray
    recv_members: tuple
    up_send_rep: np.ndarray = field(default_factory=lambda: _EMPTY)
    up_send_members: tuple = ()
    up_recv_rep: np.ndarray = field(default_factory=lambda: _EMPTY)
    up_recv_members: tuple = ()
    domains: tuple = ()
    _digest: list = field(default_factory=list, repr=False)

    def sides(self):
        """(level, side, representatives, members) of every bundle set."""
        return (("nic", 0, self.send_rep, self.send_members), ("nic", 1, self.recv_rep, self.recv_members),
                ("up", 0, self.up_send_rep, self.up_send_members), ("up", 1, self.up_recv_rep, self.up_recv_members))

    @staticmethod
    def merge(parts: list["EndpointBundles"]) -> "EndpointBundles":
        cat = [np.concatenate([getattr(x, f) for x in parts] or [_EMPTY]).astype(np.int64)
               for f in ("send_rep", "recv_rep", "up_send_rep", "up_recv_rep")]
        mem = [tuple(m for x in parts for m in getattr(x, f))
               for f in ("send_members", "recv_members", "up_send_members", "up_recv_members")]
        return EndpointBundles(cat[0], mem[0], cat[1], mem[1], cat[2], mem[2], cat[3], mem[3],
                               tuple(q for x in parts for q in x.domains))

    @property
    def stand_for(self) -> int:
        """Rank-to-rank flows the quotients stand for beyond the flows they list."""
        return sum(q.pairs - (q.size - 1) for q in self.domains)

    @property
    def stand_for_bytes(self) -> float:
        """Payload bytes the quotients stand for beyond the bytes of the flows they list."""
        return float(sum((q.pairs - (q.size - 1)) * q.pair_bytes for q in self.domains))

    def digest(self) -> bytes:
        if not self._digest:
            h = hashlib.blake2b(digest_size=16)
            for level, side, rep, mem in self.sides():
                h.update(f"{level}{side}".encode())
                h.update(np.asarray(rep, dtype=np.int64).tobytes())
                for m in mem:
                    h.update(np.int64(len(m)).tobytes())
                    h.update(m.tobytes())
            for q in self.domains:
                h.update(b"quotient")
                h.update(q.key())
            self._digest.append(h.digest())
        return self._digest[0]


def block_pair_totals(li: np.ndarray, dom: np.ndarray, blk: np.ndarray, W: np.ndarray, n_leaves: int):
    """Per-leaf block counts ``N`` (leaves x B) and the sparse same-domain correction: pairs
    ``(L, M)`` and the bytes ``sum_d c_Ld W c_Md`` the ranks of ``L`` send to ranks of ``M`` in
    their own domain (self pairs included, so they drop out too).

    Parameters
    ----------
    li, dom, blk : ndarray of int64, shape (n,)
        Leaf index, domain and traffic block of each position.
    W : ndarray of float64, shape (B, B)
        Bytes each rank of block a sends to each rank of block b.
    n_leaves : int
    """
    B = W.shape[0]
    N = np.bincount(li * B + blk, minlength=n_leaves * B).reshape(n_leaves, B).astype(np.float64)
    # rows: (domain, leaf, block) combinations present, with their rank counts
    key = (dom.astype(np.int64) * n_leaves + li) * B + blk
    uk, cnt = np.unique(key, return_counts=True)
    rblk, rest = uk % B, uk // B
    rdom, rleaf = rest // n_leaves, rest % n_leaves
    # every (r, s) pair of rows of one domain (rows are sorted by domain); traffic only inside
    # blocks (a diagonal W, e.g. rails): only pairs of one (domain, block)
    unit = rdom
    if B > 1 and np.count_nonzero(W - np.diag(np.diagonal(W))) == 0:
        unit = rdom * B + rblk
        o = np.argsort(unit, kind="stable")
        uk, cnt, rblk, rdom, rleaf, unit = uk[o], cnt[o], rblk[o], rdom[o], rleaf[o], unit[o]
    start = np.searchsorted(unit, unit, side="left")
    k = np.searchsorted(unit, unit, side="right") - start
    r = np.repeat(np.arange(len(uk)), k)
    t = np.arange(len(r)) - np.repeat(np.cumsum(k) - k, k)
    s = np.repeat(start, k) + t
    val = cnt[r].astype(np.float64) * cnt[s] * W[rblk[r], rblk[s]]
    pk = rleaf[r] * n_leaves + rleaf[s]
    upk, pinv = np.unique(pk, return_inverse=True)
    return N, upk, np.bincount(pinv, weights=val, minlength=len(upk))


def _pair_lookup(upk: np.ndarray, sval: np.ndarray, L: np.ndarray, M: np.ndarray, n_leaves: int) -> np.ndarray:
    q = L * n_leaves + M
    at = np.clip(np.searchsorted(upk, q), 0, max(len(upk) - 1, 0))
    hit = upk[at] == q if len(upk) else np.zeros(len(q), dtype=bool)
    return np.where(hit, sval[at] if len(upk) else 0.0, 0.0)


def _leaf_totals(li, dom, blk, W, pod_of_leaf, n_leaves):
    """Bytes per own-pod leaf pair, per (leaf, other pod), and each leaf's receipts from other
    pods, for the byte matrix implied by the blocks."""
    N, upk, sval = block_pair_totals(li, dom, blk, W, n_leaves)
    NW = N @ W
    pods = int(pod_of_leaf.max()) + 1
    NP = np.zeros((pods, N.shape[1]))
    np.add.at(NP, pod_of_leaf, N)
    # own pod: every (L, M) of one pod
    order = np.argsort(pod_of_leaf, kind="stable")
    cnt = np.bincount(pod_of_leaf, minlength=pods)
    Ls, Ms = [], []
    at = 0
    for c in cnt:
        leaves = order[at:at + c]
        at += c
        Ls.append(np.repeat(leaves, c))
        Ms.append(np.tile(leaves, c))
    L_in, M_in = np.concatenate(Ls), np.concatenate(Ms)
    b_in = np.einsum("ij,ij->i", NW[L_in], N[M_in]) - _pair_lookup(upk, sval, L_in, M_in, n_leaves)
    # to other pods: NW[L] . NP[Q] minus the same-domain pairs of L with Q's leaves
    b_lp = NW @ NP.T
    sl, sm = upk // n_leaves, upk % n_leaves
    np.add.at(b_lp, (sl, pod_of_leaf[sm]), -sval)
    b_lp[np.arange(n_leaves), pod_of_leaf] = 0.0
    # receipts of M from outside its pod
    out_NW = NW.sum(axis=0)[None, :] - np.stack([NW[pod_of_leaf == q].sum(axis=0) for q in range(pods)])
    recv = np.einsum("ij,ij->i", out_NW[pod_of_leaf], N)
    cross = pod_of_leaf[sl] != pod_of_leaf[sm]
    np.subtract.at(recv, sm[cross], sval[cross])
    return L_in, M_in, b_in, b_lp, recv


def _reps(li: np.ndarray, dom: np.ndarray, n_leaves: int) -> tuple[np.ndarray, np.ndarray]:
    """Send and receive representative position of every leaf: the send one of an even domain
    and the receive one of an odd domain where the leaf has both, so that no flow between two
    leaves joins representatives of one domain (it would take the scale-up links)."""
    order = np.lexsort((dom, dom % 2, li))  # per leaf: even domains first, then odd
    sl = li[order]
    start = np.searchsorted(sl, np.arange(n_leaves), side="left")
    end = np.searchsorted(sl, np.arange(n_leaves), side="right")
    send = order[start]
    last = order[end - 1]
    recv = np.where(dom[last] % 2 == 1, last, send)
    for k in np.flatnonzero((recv == send) & (end - start > 1)):
        blk = order[start[k]:end[k]]
        other = blk[dom[blk] != dom[send[k]]]
        recv[k] = other[0] if len(other) else blk[1]
    return send, recv


def _water_fill(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the source amounts ``x`` laid end to end into the destination bins ``y``
    (same total): (source index, bin index, amount) of every non-empty piece."""
    cx, cy = np.cumsum(x), np.cumsum(y)
    total = max(cx[-1], cy[-1])
    cy = cy * (cx[-1] / cy[-1]) if cy[-1] > 0 else cy
    pts = np.union1d(np.concatenate(([0.0], cx)), np.concatenate(([0.0], cy)))
    amt = np.diff(pts)
    mid = pts[:-1] + amt / 2
    keep = amt > total * 1e-13
    mid, amt = mid[keep], amt[keep]
    si = np.minimum(np.searchsorted(cx, mid), len(x) - 1)
    bi = np.minimum(np.searchsorted(cy, mid), len(y) - 1)
    return si, bi, amt


def leaf_bundled_flows(ranks: np.ndarray, caps: FabricCaps, blk: np.ndarray, W: np.ndarray):
    """The cross-domain flows of one group bundled per leaf, or None where the bundling's
    assumptions fail (a leaf's two representatives would share a domain with a peer's).

    Parameters
    ----------
    ranks : ndarray of int64, shape (n,)
    caps : FabricCaps
    blk : ndarray of int64, shape (n,)
        Traffic block of each position (all 0 for even traffic).
    W : ndarray of float64, shape (B, B)
        Bytes per rank pair between blocks (``[[S / n]]`` for even traffic).

    Returns
    -------
    (src, dst, size, count, bundles) or None
        Flows as group positions, their bytes and rank-pair counts, and the bundles.
    """
    leaf = caps.leaf_of_rank[ranks]
    dom = caps.domain_of_rank[ranks]
    pod = caps.pod_of_rank[ranks] if caps.pod_of_rank is not None else np.zeros(len(ranks), dtype=np.int64)
    lu, li = np.unique(leaf, return_inverse=True)
    nl = len(lu)
    pod_of_leaf = np.unique(pod, return_inverse=True)[1][np.unique(li, return_index=True)[1]]
    sr, rr = _reps(li, dom, nl)
    parts = []
    for w in (W, (W > 0).astype(np.float64)):  # bytes, then rank pairs that carry any
        parts.append(_leaf_totals(li, dom, blk, w, pod_of_leaf, nl))
    (L_in, M_in, b_in, b_lp, recv), (_, _, c_in, c_lp, _) = parts
    src, dst, size, count = [L_in], [M_in], [b_in], [c_in]
    for q in range(int(pod_of_leaf.max()) + 1):
        srcs = np.flatnonzero((pod_of_leaf != q) & (b_lp[:, q] > 0))
        bins = np.flatnonzero(pod_of_leaf == q)
        if not len(srcs) or recv[bins].sum() <= 0:
            continue
        si, bi, amt = _water_fill(b_lp[srcs, q], recv[bins])
        L, M = srcs[si], bins[bi]
        src.append(L)
        dst.append(M)
        size.append(amt)
        count.append(amt / b_lp[L, q] * c_lp[L, q])
    L, M = np.concatenate(src), np.concatenate(dst)
    b, c = np.concatenate(size), np.concatenate(count)
    # pairs whose bytes are all inside domains come out as a difference of equal sums: keep
    # only flows above rounding noise
    keep = b > 1e-9 * b.max() if len(b) else b > 0
    L, M, b, c = L[keep], M[keep], b[keep], np.maximum(c[keep], 1.0)
    ps, pd = sr[L], rr[M]
    if np.any(dom[ps] == dom[pd]):
        return None
    members = np.split(np.argsort(li, kind="stable"), np.cumsum(np.bincount(li, minlength=nl))[:-1])
    used_s, used_r = np.unique(L), np.unique(M)
    bundles = EndpointBundles(ranks[sr[used_s]], tuple(ranks[members[k]] for k in used_s),
                              ranks[rr[used_r]], tuple(ranks[members[k]] for k in used_r))
    return ps, pd, b, c, bundles


def nic_deviation_bytes(ranks: np.ndarray, caps: FabricCaps, pair_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position: cross-domain bytes sent and received minus its leaf's mean (what a NIC
    bundle spreads evenly); zero for even traffic on equal domains. For the tests' bound."""
    dom = caps.domain_of_rank[ranks]
    m = np.array(pair_bytes, dtype=np.float64)
    m[dom[:, None] == dom[None, :]] = 0.0
    li = np.unique(caps.leaf_of_rank[ranks], return_inverse=True)[1]
    out = []
    for v in (m.sum(axis=1), m.sum(axis=0)):
        mean = np.bincount(li, weights=v) / np.bincount(li)
        out.append(v - mean[li])
    return out[0], out[1]


def _nic_links(fabric) -> tuple[np.ndarray, np.ndarray]:
    """Per rank: its send-side (accelerator -> NIC, NIC -> leaf) and receive-side (leaf -> NIC,
    NIC -> accelerator) link ids, shape (n_ranks, 2) each."""
    cache = fabric.__dict__.setdefault("_a2a_nic_links", [])
    if cache:
        return cache[0]
    nics = np.asarray(fabric.routing.get("nic_of_rank"))
    if nics.ndim != 2 or nics.shape[1] != 1:
        raise ValueError("bundled all-to-all needs one NIC per accelerator")
    acc, nic = fabric.accel_node, nics[:, 0].astype(np.int64)
    ptr, out = fabric.csr
    # the NIC's link to a switch: its out-link whose end is not its accelerator
    first = ptr[nic]
    deg = ptr[nic + 1] - first
    cand = np.full(len(nic), -1, dtype=np.int64)
    for k in range(int(deg.max())):
        ln = out[np.minimum(first + k, len(out) - 1)]
        ok = (k < deg) & (fabric.link_dst[ln] != acc) & (cand < 0)
        cand[ok] = ln[ok]
    up = cand
    leaf = fabric.link_dst[up]
    send = np.stack([fabric.link_ids(acc, nic), up], axis=1)
    recv = np.stack([fabric.link_ids(leaf, nic), fabric.link_ids(nic, acc)], axis=1)
    cache.append((send, recv))
    return send, recv


def _scaleup_links(fabric) -> tuple[np.ndarray, np.ndarray]:
    """Per rank: its links to and from the scale-up switches (every link of its accelerator
    but the NIC's), ordered by the switch at the other end, shape (n_ranks, k) each."""
    cache = fabric.__dict__.setdefault("_a2a_up_links", [])
    if cache:
        return cache[0]
    nic_send, nic_recv = _nic_links(fabric)
    rank_of = np.full(fabric.n_nodes, -1, dtype=np.int64)
    rank_of[fabric.accel_node] = np.arange(fabric.n_accelerators)
    out = []
    for ends, other, nic in ((fabric.link_src, fabric.link_dst, nic_send[:, 0]),
                             (fabric.link_dst, fabric.link_src, nic_recv[:, 1])):
        r = rank_of[ends]
        ids = np.flatnonzero(r >= 0)
        ids = ids[~np.isin(ids, nic)]
        order = np.lexsort((other[ids], r[ids]))
        ids = ids[order]
        per = np.bincount(r[ids], minlength=fabric.n_accelerators)
        if len(per) and np.any(per != per[0]):
            raise ValueError("bundled all-to-all needs the same scale-up ports on every accelerator")
        out.append(ids.reshape(fabric.n_accelerators, -1))
    cache.append((out[0], out[1]))
    return cache[0]


def bundled_transfer(net, flows, bundles: EndpointBundles, salt: int = 0):
    """Cost ``flows`` on ``net`` with each representative's NIC links standing for its
    bundle's (one virtual link of their summed capacity), then share each bundle's bytes over
    its links in proportion to capacity. Quotient domains (``bundles.domains``): the
    representative sources' flows are costed on one link per class
    (:func:`~oassim.collectives.algorithms.all_to_all_domains.quotient_view`) and every class
    link reported its share.

    Parameters
    ----------
    net : NetworkModel
    flows : Flows
    bundles : EndpointBundles
    salt : int
    """
    from oassim.network.base import TransferResult
    from oassim.network.registry import make_network
    from oassim.network.routing_modes import share_groups

    fabric = net.fabric
    cap = np.asarray(fabric.capacity_Bps, dtype=np.float64)
    rep_links, mem_links = [], []
    for level, side, reps, members in bundles.sides():
        if not len(reps):
            continue
        table = (_nic_links(fabric) if level == "nic" else _scaleup_links(fabric))[side]
        mem = np.concatenate(members)
        rep = np.repeat(reps, [len(m) for m in members])
        for hop in range(table.shape[1]):
            rep_links.append(table[rep, hop])
            mem_links.append(table[mem, hop])
    rep_l = np.concatenate(rep_links) if rep_links else np.zeros(0, dtype=np.int64)
    mem_l = np.concatenate(mem_links) if mem_links else np.zeros(0, dtype=np.int64)
    # groups are disjoint and every rank is in one bundle per level and side: pairs are distinct
    scaled = cap.copy()
    summed = np.bincount(rep_l, weights=cap[mem_l], minlength=len(cap))
    on = summed > 0
    scaled[on] = summed[on]
    quotient = _quotient(fabric, flows, bundles, scaled, salt)
    expand, lat, spread = quotient if quotient is not None else (None, None, None)
    view = fabric.with_links(capacity_Bps=scaled, link_lat=lat)
    if spread is not None:
        view.__dict__["spread"] = spread  # the representative sources' hops on their class links
    share_groups(view, fabric, drop=None if expand is None else np.asarray([e[0] for e in expand], dtype=np.int64))
    opts = {"eps": net.eps} if getattr(net, "name", "") == "flow" and hasattr(net, "eps") else {}
    res = make_network(net.name, view, **opts).transfer(flows, salt)
    lb = np.array(res.link_bytes, dtype=np.float64)
    moved = lb[rep_l] * cap[mem_l] / scaled[rep_l]
    lb[rep_l] = 0.0
    np.add.at(lb, mem_l, moved)
    for rep, members, share in expand or ():
        lb[members] = lb[rep] * share
    return TransferResult(res.time_s, res.flow_finish_s, lb, lb / cap)


def _quotient(fabric, flows, bundles: EndpointBundles, scaled: np.ndarray, salt: int):
    """The quotient of ``fabric`` for ``bundles.domains``: representative links' capacities
    (written into ``scaled``), ``(class expansion, link latencies, spread)`` where ``spread``
    moves the representative sources' hops onto their class links; None without quotients."""
    from oassim.collectives.algorithms.all_to_all_domains import quotient_view
    from oassim.topology.fabric import Paths

    quot = list(bundles.domains)
    if not quot:
        return None
    acc, nd = fabric.accel_node, fabric.node_domain
    reps = acc[np.asarray([q.rep for q in quot], dtype=np.int64)]
    mine = np.isin(flows.src, reps) & (nd[flows.src] == nd[flows.dst])

    def rep_paths(q):
        sel = mine & (flows.src == acc[q.rep])
        return fabric.spread(flows.src[sel], flows.dst[sel], salt)[0].links

    rep_of, cap_of, lat_of, expand = quotient_view(fabric, quot, rep_paths)
    ids = np.fromiter(cap_of, dtype=np.int64, count=len(cap_of))
    scaled[ids] = np.fromiter(cap_of.values(), dtype=np.float64, count=len(ids))
    lat = np.array(fabric.link_lat, dtype=np.float64)
    lat[ids] = np.fromiter(lat_of.values(), dtype=np.float64, count=len(ids))

    def spread(src, dst, salt=0):
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        hit = np.isin(src, reps) & (nd[src] == nd[dst])
        if not hit.any():
            return fabric.spread(src, dst, salt)
        parts = []
        for sel, remap in ((np.flatnonzero(~hit), False), (np.flatnonzero(hit), True)):
            if len(sel):
                p, o, f = fabric.spread(src[sel], dst[sel], salt)
                parts.append((p.ptr, rep_of[p.links] if remap else p.links, sel[o], f))
        ptr, at = [np.zeros(1, dtype=np.int64)], 0
        for p, *_ in parts:
            ptr.append(p[1:] + at)
            at += p[-1]
        links = np.concatenate([x[1] for x in parts])
        if np.any(links < 0):
            raise AssertionError("a representative flow left its quotient domain")
        return (Paths(np.concatenate(ptr), links), np.concatenate([x[2] for x in parts]),
                np.concatenate([x[3] for x in parts]))

    return expand, lat, spread
