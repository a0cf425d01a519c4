"""The ``analytical`` network model: path latency plus each link's processor-sharing finish
time, with link loads counted statically.

What is modelled (docs/architecture.md decision 5): every flow of a phase starts at t = 0 and is striped
over the paths the hardware spreads it on (:meth:`Fabric.spread`: NVLink-style fabrics use all
switch chips, ECMP fabrics one hashed path). Each link is costed on its own as a processor
shared max-min fairly by the sub-flows crossing it: with sub-flow sizes ``b_i`` on link ``l``,
a sub-flow of ``b`` bytes finishes there at ``sum_i min(b_i, b) / cap_l`` (the smaller ones
leave first and free their share; the others move at its pace until it leaves). A sub-flow's
time is the slowest of its links plus its path latency (cut-through: latency is paid once, not
per byte); a flow finishes with its last sub-flow. A flow that stands for ``c`` equal ones
(``Flows.count``) counts as ``c`` flows of ``size / c`` bytes. On a link whose sub-flows all have the same size
(one step of a collective, the common case, even where NVLink stripes a flow unevenly over
switch chips) the rule is ``load_l / cap_l`` for all of them and is computed so; only the
links that carry different sizes are sorted.

Why: this is the cheapest model that still sees contention. Per link it is exact (the
max-min answer for flows that start together on one link), so it equals the ``flow`` model
where no link is shared (tested to 1%) and on a single shared bottleneck; the largest
sub-flow of a link, and equal ones, take ``load_l / cap_l``, so the makespan of a phase is
the static-load one. Where flows cross several loaded links it ignores that a flow held back
on one link leaves spare capacity on another (optimistic when a flow's last bytes are limited
by a slower link after its bottleneck has emptied, pessimistic for a flow sharing a link with
others held back elsewhere). The per-link rule matters when calls of unrelated sizes are
costed together (:mod:`oassim.scheduler.comm`): a small pipeline send beside a large
gradient reduce-scatter on one NIC link finishes after about twice its own time, not after
the reduce-scatter. It is vectorised numpy over the path CSR (``np.bincount``,
``np.maximum.reduceat``, one sort by (link, size) of the links with unequal sizes), no Python loop per
flow, because sweeps call it millions of times.

The striping step (:func:`stripe`) is shared with the ``flow`` model, which imports it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from oassim.network.base import Flows, TransferResult
from oassim.network.routing_modes import grouped, scaleout_routing
from oassim.topology.fabric import Fabric

#: Relative distance from its link's mean sub-flow size above which a sub-flow's size counts as
#: different (closer sizes finish within that fraction of ``load / cap``; rounding of equal
#: sizes stays far below it).
MIXED_RTOL = 1e-9

__all__ = ["SubFlows", "stripe", "stripe_parts", "path_latency_s", "link_capacity_Bps", "shared_finish_s",
           "compact_links", "AnalyticalNetwork"]


@dataclass(frozen=True)
class SubFlows:
    """Flows striped into sub-flows, one per path (only flows with src != dst appear).

    Attributes
    ----------
    n_flows : int
        Flows in the phase (including src == dst ones, which have no sub-flow).
    ptr : ndarray of int64, shape (n_sub + 1,)
        CSR offsets into ``links``.
    links : ndarray of int64, shape (total_hops,)
        Directed link ids of each sub-flow's path, in travel order.
    owner : ndarray of int64, shape (n_sub,)
        Flow each sub-flow belongs to.
    size_bytes : ndarray of float64, shape (n_sub,)
        Bytes of each sub-flow (flow size x stripe fraction).
    latency_s : ndarray of float64, shape (n_sub,)
        Path latency of each sub-flow, s.
    """

    n_flows: int
    ptr: np.ndarray
    links: np.ndarray
    owner: np.ndarray
    size_bytes: np.ndarray
    latency_s: np.ndarray

    @property
    def hops(self) -> np.ndarray:
        """Links per sub-flow, shape (n_sub,)."""
        return np.diff(self.ptr)

    def link_bytes(self, n_links: int) -> np.ndarray:
        """Bytes each directed link carries, shape (n_links,)."""
        return np.bincount(self.links, weights=np.repeat(self.size_bytes, self.hops), minlength=n_links)

    def flow_max(self, per_sub: np.ndarray) -> np.ndarray:
        """Per-flow maximum of a per-sub-flow quantity, shape (n_flows,); 0 for flows without one."""
        out = np.zeros(self.n_flows)
        if len(per_sub):
            np.maximum.at(out, self.owner, per_sub)
        return out


def link_capacity_Bps(fabric: Fabric) -> np.ndarray:
    """Payload capacity per directed link, bytes/s, shape (n_links,); ValueError if any is <= 0."""
    cap = np.ascontiguousarray(fabric.capacity_Bps, dtype=np.float64)
    if len(cap) and not np.all(cap > 0):
        bad = int(np.flatnonzero(~(cap > 0))[0])
        raise ValueError(f"link {bad} of fabric {fabric.name!r} has capacity {cap[bad]!r} B/s; must be > 0")
    return cap


def path_latency_s(fabric: Fabric, ptr: np.ndarray, links: np.ndarray) -> np.ndarray:
    """Latency of each path: its links' latencies plus the forwarding latency of the nodes it
    passes through (not its two ends), s, shape (n_paths,). Paths must be non-empty."""
    if len(ptr) == 1:
        return np.zeros(0)
    per_hop = fabric.link_lat[links] + fabric.node_lat[fabric.link_dst[links]]
    # the node after the last hop is the destination, which does not forward
    return np.add.reduceat(per_hop, ptr[:-1]) - fabric.node_lat[fabric.link_dst[links[ptr[1:] - 1]]]


def stripe(fabric: Fabric, flows: Flows, salt: int = 0) -> SubFlows:
    """Validate ``flows`` and stripe each one (src != dst) over the paths ``fabric.spread`` gives.

    Parameters
    ----------
    fabric : Fabric
    flows : Flows
        Node ids in ``[0, fabric.n_nodes)``, sizes > 0 bytes.
    salt : int
        ECMP hash salt passed to the router.

    Raises
    ------
    ValueError
        Mismatched lengths, a size that is not a finite number > 0, a node id out of range, or a
        route without links between two different nodes.
    """
    if not isinstance(flows, Flows):
        raise TypeError(f"flows must be oassim.network.Flows, got {type(flows).__name__}")
    n = len(flows)
    size = flows.size_bytes
    if n and not np.all(np.isfinite(size) & (size > 0)):
        bad = int(np.flatnonzero(~(np.isfinite(size) & (size > 0)))[0])
        raise ValueError(f"flow {bad} has size_bytes {size[bad]!r}; sizes must be finite and > 0")
    src, dst = flows.src, flows.dst
    for name, ids in (("src", src), ("dst", dst)):
        if n and (ids.min() < 0 or ids.max() >= fabric.n_nodes):
            raise ValueError(f"flow {name} node ids must lie in [0, {fabric.n_nodes}), "
                             f"got {int(ids.min())}..{int(ids.max())}")
    moving = np.flatnonzero(src != dst)
    if len(moving) == 0:
        z = np.zeros(0, dtype=np.int64)
        return SubFlows(n, np.zeros(1, dtype=np.int64), z, z, np.zeros(0), np.zeros(0))
    spread = fabric.spread(src[moving], dst[moving], salt)
    cache = _stripes(fabric) if STRIPE_CACHE_HOPS > 0 else None
    hit = None if cache is None else cache.get(id(spread))
    if hit is not None and hit[0] is spread and np.array_equal(hit[1], moving):
        cache.move_to_end(id(spread))
        _s, _m, ptr, links, owner, frac, latency = hit
        return SubFlows(n, ptr, links, owner, size[owner] * frac, latency)
    paths, owner, frac = spread
    ptr = np.ascontiguousarray(paths.ptr, dtype=np.int64)
    links = np.ascontiguousarray(paths.links, dtype=np.int64)
    owner = moving[np.asarray(owner, dtype=np.int64)]
    frac = np.asarray(frac, dtype=np.float64)
    keep = frac > 0
    if not np.all(keep):  # a zero stripe carries nothing and must not take a fair share
        from oassim.topology.routing import permute_paths

        p = permute_paths(ptr, links, np.flatnonzero(keep))
        ptr, links, owner, frac = p.ptr, p.links, owner[keep], frac[keep]
    hops = np.diff(ptr)
    if np.any(hops == 0):
        k = int(np.flatnonzero(hops == 0)[0])
        raise ValueError(f"the router gave an empty path for flow {int(owner[k])} "
                         f"({int(src[owner[k]])} -> {int(dst[owner[k]])})")
    latency = path_latency_s(fabric, ptr, links)
    if cache is not None:  # the fabric hands back its cached answer for the same pairs: keep ours beside it
        for a in (moving, owner, frac, latency):
            a.flags.writeable = False
        old = cache.pop(id(spread), None)
        if old is not None:
            _stripe_hops[fabric] -= _entry_hops(old)
        entry = (spread, moving, ptr, links, owner, frac, latency)
        cache[id(spread)] = entry
        total = _stripe_hops.get(fabric, 0) + _entry_hops(entry)
        while len(cache) > 1 and total > STRIPE_CACHE_HOPS:
            total -= _entry_hops(cache.popitem(last=False)[1])
        _stripe_hops[fabric] = total
    return SubFlows(n, ptr, links, owner, size[owner] * frac, latency)


def stripe_parts(fabric: Fabric, parts: list[Flows], salt: int = 0) -> SubFlows:
    """``stripe`` of the concatenation of ``parts`` (flows without ``count``), from each part's
    own stripe. A flow's paths and stripe fractions depend on its endpoints and the salt alone
    (the routers hash each pair on its own) and :func:`stripe` lists sub-flows in flow order,
    so the concatenated stripes are the concatenation's stripe, array for array; each part
    striped before (a call's flows, costed alone first) is answered by the caches instead of
    routing every new combination of calls again."""
    subs = [stripe(fabric, p, salt) for p in parts]
    if len(subs) == 1:
        return subs[0]
    nf = np.cumsum([0] + [s.n_flows for s in subs])
    nh = np.cumsum([0] + [int(s.ptr[-1]) for s in subs])
    return SubFlows(int(nf[-1]), np.concatenate([[0]] + [s.ptr[1:] + b for s, b in zip(subs, nh)]).astype(np.int64),
                    np.concatenate([s.links for s in subs]).astype(np.int64, copy=False),
                    np.concatenate([s.owner + b for s, b in zip(subs, nf)]).astype(np.int64, copy=False),
                    np.concatenate([s.size_bytes for s in subs]), np.concatenate([s.latency_s for s in subs]))


#: Path hops (plus four per sub-flow) of striped flow sets each fabric keeps for reuse (0: none).
STRIPE_CACHE_HOPS = 8 * 2**20

_STRIPES: "weakref.WeakKeyDictionary[Fabric, OrderedDict]" = weakref.WeakKeyDictionary()
_stripe_hops: "weakref.WeakKeyDictionary[Fabric, int]" = weakref.WeakKeyDictionary()  # each cache's size


def _entry_hops(entry: tuple) -> int:
    """What one stripe-cache entry counts against :data:`STRIPE_CACHE_HOPS`."""
    return len(entry[3]) + 4 * len(entry[4])


def _stripes(fabric: Fabric) -> "OrderedDict | None":
    """The fabric's cache of stripes: the sub-flows of the pairs of one ``fabric.spread``
    answer (which the fabric caches and returns as the same object), by that answer's id."""
    try:
        return _STRIPES.setdefault(fabric, OrderedDict())
    except TypeError:  # pragma: no cover - a fabric stand-in that takes no weak reference
        return None


class AnalyticalNetwork:
    """Static-load network model (``network: analytical``); see the module docstring.

    Parameters
    ----------
    fabric : Fabric
        The frozen cluster fabric; link capacities are ``fabric.capacity_Bps``.
    """

    name = "analytical"

    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self._cap = link_capacity_Bps(fabric)
        self.routing = scaleout_routing(fabric)

    def __repr__(self) -> str:
        return f"AnalyticalNetwork(fabric={self.fabric.name!r})"

    def transfer(self, flows: Flows, salt: int = 0) -> TransferResult:
        """Cost flows that start together at t = 0.

        Parameters
        ----------
        flows : Flows
            n flows; sizes > 0 bytes; src == dst flows take 0 s.
        salt : int
            ECMP hash salt (another salt, other path choices).

        Returns
        -------
        TransferResult
            ``flow_finish_s`` (n,) = path latency + max over the sub-flow's links of its
            processor-sharing finish there (:func:`shared_finish_s`), maximised over a
            flow's sub-flows; ``link_bytes`` and
            ``link_busy_s`` (n_links,).
        """
        finish, view, n_ext, used, load_k = self._solve(flows, salt)
        t = float(finish.max()) if len(finish) else 0.0
        if used is not None:
            load = np.zeros(n_ext)
            load[used] = load_k
            if view is None:  # the links outside ``used`` carry nothing: 0 s busy
                busy = np.zeros(n_ext)
                busy[used] = load_k / self._cap[used]
                return TransferResult(t, finish, load, busy)
        else:
            load = load_k
        if view is not None:
            load = view[2].expand(load, self._cap)
        return TransferResult(t, finish, load, load / self._cap)

    def finish_s(self, flows: Flows, salt: int = 0) -> np.ndarray:
        """``transfer(flows, salt).flow_finish_s`` without the per-link loads, s, shape (n,)."""
        return self._solve(flows, salt)[0]

    def finish_parts_s(self, parts: list[Flows], salt: int = 0) -> np.ndarray:
        """``finish_s`` of the concatenation of ``parts`` (flows without ``count``), striped
        part by part (:func:`stripe_parts`): the same answer, to the last bit, while each part
        that was striped before is not routed again."""
        if any(p.count is not None for p in parts):
            raise ValueError("finish_parts_s costs flows without count")
        return self._solve_striped(stripe_parts(self.fabric, parts, salt), None)[0]

    def _solve(self, flows: Flows, salt: int):
        """Per-flow finish times, the equal-cost view (or None), the extended link count, the
        touched links (None: ``load_k`` is over every extended id) and their loads."""
        return self._solve_striped(stripe(self.fabric, flows, salt), flows.count)

    def _solve_striped(self, sub: SubFlows, count_of_flow: np.ndarray | None):
        """:meth:`_solve` of flows already striped (``count_of_flow``: their ``Flows.count``)."""
        view = grouped(self.fabric, sub.links, sub.owner, sub.hops, count_of_flow, self.routing, self._cap)
        links, cap = (sub.links, self._cap) if view is None else view[:2]
        n_ext = len(cap)
        hop_bytes = np.repeat(sub.size_bytes, sub.hops)
        sparse = len(links) * 8 < n_ext
        if sparse:  # few links touched (one domain's pattern, a pipeline hop): work on those alone
            used, key = compact_links(links, n_ext)
            cap_k = cap[used]
        else:
            used, key, cap_k = None, links, cap
        load_k = np.bincount(key, weights=hop_bytes, minlength=len(cap_k))
        count = None if count_of_flow is None else count_of_flow[sub.owner]
        unit = sub.size_bytes if count is None else sub.size_bytes / count
        per_link = (load_k / cap_k)[key]  # equal sub-flows on a link: all drain with it
        if len(unit) and unit.min() != unit.max():
            hop_unit = np.repeat(unit, sub.hops)
            hop_count = None if count is None else np.repeat(count, sub.hops)
            # a link carries different sizes iff one of its hops differs from its mean size
            n_k = np.bincount(key, weights=hop_count, minlength=len(cap_k))
            odd = np.abs(hop_unit - load_k[key] / n_k[key]) > MIXED_RTOL * hop_unit
            if np.any(odd):
                mixed_link = np.zeros(len(cap_k), dtype=bool)
                mixed_link[key[odd]] = True
                mixed = mixed_link[key]  # every hop of those links, so each is costed whole
                per_link[mixed] = shared_finish_s(key[mixed], hop_bytes[mixed], hop_unit[mixed],
                                                  None if hop_count is None else hop_count[mixed], cap_k)
        if len(sub.size_bytes):
            t_sub = np.maximum.reduceat(per_link, sub.ptr[:-1]) + sub.latency_s
        else:
            t_sub = np.zeros(0)
        return sub.flow_max(t_sub), view, n_ext, used, load_k


def shared_finish_s(key: np.ndarray, size_bytes: np.ndarray, unit_bytes: np.ndarray, count: np.ndarray | None,
                    cap_Bps: np.ndarray) -> np.ndarray:
    """Processor-sharing finish time of every hop on its link, s, shape (n_hops,).

    On one link of capacity ``cap`` shared max-min fairly by flows that start together, a
    flow of ``b`` bytes finishes at ``sum_i min(b_i, b) / cap`` (the flows smaller than it
    leave first, each freeing its share; the others move at its pace until it leaves).

    Parameters
    ----------
    key : ndarray of int64, shape (n_hops,)
        Link (index into ``cap_Bps``) of every hop.
    size_bytes : ndarray of float64, shape (n_hops,)
        Bytes of the hop's sub-flow (all ``count`` flows it stands for).
    unit_bytes : ndarray of float64, shape (n_hops,)
        Bytes of one of the flows it stands for (``size_bytes / count``).
    count : ndarray of float64 or None
        Flows each hop stands for (None: one).
    cap_Bps : ndarray of float64
        Capacity of each link id, bytes/s.
    """
    order = np.lexsort((unit_bytes, key))
    k, u, w = key[order], unit_bytes[order], size_bytes[order]
    c = np.ones(len(k)) if count is None else count[order]
    n = len(k)
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    lengths = np.diff(np.r_[starts, n])
    grp = np.repeat(np.arange(len(starts)), lengths)
    tot_w = np.add.reduceat(w, starts)
    tot_c = np.add.reduceat(c, starts)
    # running sums restarted at each link (the previous link's total taken off at its start)
    w_run, c_run = w.copy(), c.copy()
    w_run[starts[1:]] -= tot_w[:-1]
    c_run[starts[1:]] -= tot_c[:-1]
    below_w = np.cumsum(w_run)  # bytes of this hop and of the smaller ones on its link
    later_c = np.maximum(tot_c[grp] - np.cumsum(c_run), 0.0)  # flows on its link not smaller than it
    done = np.clip(below_w + u * later_c, w, tot_w[grp])
    out = np.empty(n)
    out[order] = done / cap_Bps[k]
    return out


def compact_links(links: np.ndarray, n_links: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct link ids of ``links`` ascending, and ``links`` renumbered into them
    (int64, contiguous)."""
    links = np.ascontiguousarray(links, dtype=np.int64)
    if len(links) * 64 < n_links:  # few hops: sorting them beats a sweep over every link id
        used, local = np.unique(links, return_inverse=True)
        return used, np.ascontiguousarray(local.ravel(), dtype=np.int64)
    mark, index = _scratch(n_links)
    mark[links] = True
    used = np.flatnonzero(mark)
    mark[used] = False  # the scratch mark is all False between calls
    index[used] = np.arange(len(used))
    return used, index[links]


_SCRATCH = threading.local()


def _scratch(n_links: int) -> tuple[np.ndarray, np.ndarray]:
    """A per-thread all-False mark and an index buffer over ``n_links`` link ids, reused
    across calls (fresh arrays of a large fabric's size cost more than the sweep itself)."""
    cache = getattr(_SCRATCH, "by_size", None)
    if cache is None:
        cache = _SCRATCH.by_size = {}
    hit = cache.get(n_links)
    if hit is None:
        if len(cache) >= 4:
            cache.clear()
        hit = cache[n_links] = (np.zeros(n_links, dtype=np.bool_), np.empty(n_links, dtype=np.int64))
    return hit
