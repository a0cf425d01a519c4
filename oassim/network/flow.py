"""The ``flow`` network model: max-min fair rates, recomputed every time a flow finishes.

What is modelled (docs/architecture.md decision 5): flows of a phase start together at t = 0 and are
striped over their paths exactly as in the ``analytical`` model (:func:`~oassim.network.
analytical.stripe`). Each sub-flow is a fluid flow; links share their payload capacity
max-min fairly (progressive filling, the bandwidth allocation that TCP-like and credit-based
transports approach in steady state). When a sub-flow finishes, the rates of the remaining
ones are re-solved, so flows that leave a bottleneck early free it for the others: this is
what captures stragglers and the difference between a short flow sharing a link with a long
one and the static-load answer. Completions within a relative ``eps`` of each other finish in
one event, so n equal flows cost one solve, not n. A sub-flow finishes at its transmission
completion plus its path latency (cut-through: latency paid once).

Endpoint injection needs no rule of its own: an accelerator's first-hop links (its scale-up
ports, its NIC link) are links with capacities like any other, so a chip never sends faster
than its ports.

The solver and the event loop are numba kernels (``_kernels.py``); this module validates,
stripes and assembles the answer. Each event re-solves only the flows whose rate can change
and checks the max-min certificate on every link whose load changed, so the answer equals a
full re-solve at every completion (tested against one) at a cost that follows the size of
the disturbance: a phase of equal flows (a collective step) costs a few full solves; a phase
of all-different sizes costs one small solve per flow, growing with how densely the flows
share links.

Kernel answers are memoised per model by the content of the kernel's inputs (path CSR on the
renumbered touched links, their capacities, the sub-flow sizes and ``eps``): a phase whose
compacted inputs repeat bit for bit (the same pattern in another scale-up domain, the same
flows costed again by the scheduler) takes the stored answer, which is the one a re-solve would
give. ``finish_s`` answers the per-flow finish times alone, for callers that need no link loads.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from oassim.network.analytical import SubFlows, compact_links, link_capacity_Bps, stripe
from oassim.network.base import Flows, TransferResult
from oassim.network.routing_modes import grouped, scaleout_routing
from oassim.topology.fabric import Fabric, Paths

__all__ = ["maxmin_rates", "FlowRun", "FlowNetwork", "MEMO_BYTES"]


def _kernels():
    """The numba kernels, imported on the first flow solve (an analytical run never loads numba)."""
    from oassim.network import _kernels as K

    return K


#: Bytes of kernel answers (three float64 per sub-flow) a :class:`FlowNetwork` keeps for reuse (0: none).
MEMO_BYTES = 256 * 2**20


def maxmin_rates(paths: Paths, capacity_Bps: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Max-min fair rate of each path's flow (one progressive-filling solve), bytes/s.

    Parameters
    ----------
    paths : Paths
        One flow per path: CSR of directed link ids, n paths. A link crossed twice counts twice.
    capacity_Bps : ndarray of float64, shape (n_links,)
        Capacity of every link id the paths may use, bytes/s (> 0).
    active : ndarray of bool, shape (n,), optional
        Flows taking part (default all); the others get rate 0.

    Returns
    -------
    ndarray of float64, shape (n,)
        Rates, bytes/s; +inf for an active flow with an empty path.
    """
    ptr = np.ascontiguousarray(paths.ptr, dtype=np.int64)
    links = np.ascontiguousarray(paths.links, dtype=np.int64)
    cap = np.ascontiguousarray(capacity_Bps, dtype=np.float64)
    n = len(ptr) - 1
    act = np.ones(n, dtype=np.bool_) if active is None else np.ascontiguousarray(active, dtype=np.bool_)
    if act.shape != (n,):
        raise ValueError(f"active has shape {act.shape}; expected ({n},)")
    if len(links) and (links.min() < 0 or links.max() >= len(cap)):
        raise ValueError(f"path link ids must lie in [0, {len(cap)})")
    if len(cap) and not np.all(cap > 0):
        raise ValueError("link capacities must be > 0")
    rates = np.zeros(n)
    _kernels().maxmin_rates(ptr, links, cap, np.flatnonzero(act), rates, np.full(n, -1, dtype=np.int64))
    return rates


@dataclass(frozen=True)
class FlowRun:
    """The ``flow`` model's answer with the detail behind it.

    Attributes
    ----------
    result : TransferResult
        What :meth:`FlowNetwork.transfer` returns.
    sub : SubFlows
        The sub-flows solved (n_sub of them).
    sub_finish_s : ndarray of float64, shape (n_sub,)
        Finish time of each sub-flow, path latency included, s.
    initial_rate_Bps : ndarray of float64, shape (n_sub,)
        Max-min rate of each sub-flow at t = 0, bytes/s.
    delivered_bytes : ndarray of float64, shape (n_sub,)
        Integral of each sub-flow's rate over time, bytes (equals its size: conservation).
    events : int
        Rate re-solves (completion events) the phase took.
    """

    result: TransferResult
    sub: SubFlows
    sub_finish_s: np.ndarray
    initial_rate_Bps: np.ndarray
    delivered_bytes: np.ndarray
    events: int


class FlowNetwork:
    """Max-min fair flow-level network model (``network: flow``); see the module docstring.

    Parameters
    ----------
    fabric : Fabric
        The frozen cluster fabric; link capacities are ``fabric.capacity_Bps``.
    eps : float
        Completions within this relative tolerance of the event time finish in one event
        (0 <= eps < 1e-3).
    """

    name = "flow"

    def __init__(self, fabric: Fabric, eps: float = 1e-9):
        if not (0.0 <= float(eps) < 1e-3):
            raise ValueError(f"eps must be in [0, 1e-3), got {eps!r}")
        self.fabric = fabric
        self.eps = float(eps)
        self._cap = link_capacity_Bps(fabric)
        self.routing = scaleout_routing(fabric)
        self._memo: OrderedDict[bytes, tuple] = OrderedDict()
        self._memo_bytes = 0
        self.stats = {"kernel_runs": 0, "kernel_hits": 0}

    def __repr__(self) -> str:
        return f"FlowNetwork(fabric={self.fabric.name!r}, eps={self.eps:g})"

    def run(self, flows: Flows, salt: int = 0) -> FlowRun:
        """Cost flows that start together and keep the per-sub-flow detail (see :class:`FlowRun`).

        Parameters
        ----------
        flows : Flows
            n flows; sizes > 0 bytes; src == dst flows take 0 s.
        salt : int
            ECMP hash salt.
        """
        sub, view, links, used, local, (tx, rate0, delivered, events) = self._solve(flows, salt)
        sub_finish = tx + sub.latency_s
        finish = sub.flow_max(sub_finish)
        if view is None:  # the links outside ``used`` carry nothing: 0 bytes, 0 s busy
            link_bytes, busy = np.zeros(self.fabric.n_links), np.zeros(self.fabric.n_links)
            on = np.bincount(local, weights=np.repeat(sub.size_bytes, sub.hops), minlength=len(used))
            link_bytes[used] = on
            busy[used] = on / self._cap[used]
        else:  # a group's bytes shared by its links in proportion to capacity
            ext = np.bincount(links, weights=np.repeat(sub.size_bytes, sub.hops), minlength=len(view[1]))
            link_bytes = view[2].expand(ext, self._cap)
            busy = link_bytes / self._cap
        result = TransferResult(float(finish.max()) if len(finish) else 0.0, finish, link_bytes, busy)
        return FlowRun(result, sub, sub_finish, rate0.copy(), delivered.copy(), events)

    def finish_s(self, flows: Flows, salt: int = 0) -> np.ndarray:
        """``transfer(flows, salt).flow_finish_s`` without the per-link loads, s, shape (n,)."""
        sub, _view, _links, _used, _local, (tx, _rate0, _delivered, _events) = self._solve(flows, salt)
        return sub.flow_max(tx + sub.latency_s)

    def _solve(self, flows: Flows, salt: int):
        """Stripe ``flows`` and run the completion kernel on the links they cross, renumbered
        in id order (the kernel reads link ids only as indices, so the answer is unchanged).
        Kernel answers are memoised by the content of its inputs (a digest of the path CSR,
        capacities, sizes and eps): a phase whose compacted inputs repeat bit for bit, such as
        the same pattern in another scale-up domain, gets the same answer without a re-solve."""
        sub = stripe(self.fabric, flows, salt)
        view = grouped(self.fabric, sub.links, sub.owner, sub.hops, flows.count, self.routing, self._cap)
        links, cap = (sub.links, self._cap) if view is None else view[:2]
        used, local = compact_links(links, len(cap))
        cap_u = np.ascontiguousarray(cap[used])
        h = hashlib.sha256(repr((self.eps, len(sub.ptr), len(local))).encode())
        for arr in (sub.ptr, local, cap_u, sub.size_bytes):
            h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
        key = h.digest()
        memo = self._memo
        hit = memo.get(key) if MEMO_BYTES > 0 else None
        if hit is not None:
            memo.move_to_end(key)
            self.stats["kernel_hits"] += 1
            return sub, view, links, used, local, hit
        m = len(sub.size_bytes)
        tx, rate0, delivered = np.empty(m), np.empty(m), np.empty(m)
        events = int(_kernels().flow_completion(sub.ptr, local, cap_u, sub.size_bytes, self.eps, tx, rate0, delivered))
        self.stats["kernel_runs"] += 1
        for arr in (tx, rate0, delivered):
            arr.flags.writeable = False
        out = (tx, rate0, delivered, events)
        if MEMO_BYTES <= 0:
            return sub, view, links, used, local, out
        memo[key] = out
        self._memo_bytes += 24 * m
        while self._memo_bytes > MEMO_BYTES and len(memo) > 1:
            _k, old = memo.popitem(last=False)
            self._memo_bytes -= 24 * len(old[0])
        return sub, view, links, used, local, out

    def transfer(self, flows: Flows, salt: int = 0) -> TransferResult:
        """Cost flows that start together at t = 0.

        Parameters
        ----------
        flows : Flows
            n flows; sizes > 0 bytes; src == dst flows take 0 s.
        salt : int
            ECMP hash salt.

        Returns
        -------
        TransferResult
            ``flow_finish_s`` (n,): when each flow's last sub-flow finished (max-min rates
            re-solved at every completion, path latency added); ``link_bytes`` and
            ``link_busy_s`` (n_links,).
        """
        return self.run(flows, salt).result
