"""The ``analytical`` network model: path latency plus bytes over the bottleneck share, with
link loads counted statically.

What is modelled (docs/architecture.md decision 5): every flow of a phase starts at t = 0 and is striped
over the paths the hardware spreads it on (:meth:`Fabric.spread`: NVLink-style fabrics use all
switch chips, ECMP fabrics one hashed path). The load of a link is the total bytes of all
sub-flows crossing it; a sub-flow of ``b`` bytes on link ``l`` is given the share
``cap_l * b / load_l`` of it, so it takes ``load_l / cap_l`` there, and its time is the slowest
of its links plus its path latency (cut-through: latency is paid once, not per byte). A flow
finishes with its last sub-flow.

Why: this is the cheapest model that still sees contention. It is exact where no link is
shared (it then equals the ``flow`` model, tested to 1%), and pessimistic for flows that share
a bottleneck with larger ones (they are not allowed to finish early and free the link). It is
vectorised numpy over the path CSR (``np.bincount``, ``np.maximum.reduceat``), no Python loop
per flow, because sweeps call it millions of times.

The striping step (:func:`stripe`) is shared with the ``flow`` model, which imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oassim.network.base import Flows, TransferResult
from oassim.network.routing_modes import grouped, scaleout_routing
from oassim.topology.fabric import Fabric

__all__ = ["SubFlows", "stripe", "path_latency_s", "link_capacity_Bps", "AnalyticalNetwork"]


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
    paths, owner, frac = fabric.spread(src[moving], dst[moving], salt)
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
    return SubFlows(n, ptr, links, owner, size[owner] * frac, path_latency_s(fabric, ptr, links))


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
            ``flow_finish_s`` (n,) = path latency + max over the sub-flow's links of
            load / capacity, maximised over a flow's sub-flows; ``link_bytes`` and
            ``link_busy_s`` (n_links,).
        """
        sub = stripe(self.fabric, flows, salt)
        view = grouped(self.fabric, sub.links, sub.owner, sub.hops, flows.count, self.routing, self._cap)
        links, cap = (sub.links, self._cap) if view is None else view[:2]
        n_ext = len(cap)
        if len(links) * 8 < n_ext:
            # few links touched (one domain's pattern, a pipeline hop): work on those alone
            used, at = np.unique(links, return_inverse=True)
            load_used = np.bincount(at, weights=np.repeat(sub.size_bytes, sub.hops), minlength=len(used))
            busy_used = load_used / cap[used]
            load = np.zeros(n_ext)
            load[used] = load_used
            per_link = busy_used[at]
        else:
            load = np.bincount(links, weights=np.repeat(sub.size_bytes, sub.hops), minlength=n_ext)
            per_link = (load / cap)[links]
        if len(sub.size_bytes):
            t_sub = np.maximum.reduceat(per_link, sub.ptr[:-1]) + sub.latency_s
        else:
            t_sub = np.zeros(0)
        finish = sub.flow_max(t_sub)
        if view is not None:
            load = view[2].expand(load, self._cap)
        return TransferResult(float(finish.max()) if len(finish) else 0.0, finish, load, load / self._cap)
