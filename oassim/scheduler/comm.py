"""Collectives in flight: what each call costs alone, and how calls running at once slow each other.

What is modelled. Each :class:`~oassim.workload.steps.CollectiveCall` becomes one
``CollectiveRequest(op, size_bytes, groups)`` answered by the collective engine (memoised:
identical calls cost once). A call's ``groups`` already holds every replica that runs it at
the same moment (all data-parallel groups of a stage), so contention *inside* a call is the
engine's business. This module handles contention *between* calls that overlap in time
(data-parallel buckets of several stages at once, a gradient bucket beside a pipeline
send/recv, ...), by a fluid model:

- A call in flight is a job of ``alone_s`` seconds of work (its time alone, from the
  engine), of which ``bandwidth_s`` (the phases' transfer terms, ``sum repeat * transfer_s``)
  is bandwidth-bound; latency steps and launch overheads are not slowed by sharing.
- Calls conflict when their link sets (links the engine's answer loaded) intersect. Only
  connected groups of conflicting calls are costed together; a call that shares no link with
  anything in flight runs at its alone speed without asking the network model again.
- A conflicting set is costed jointly *on the network model the run uses*: every call of the
  set contributes the flows of all its phases, each flow carrying its bytes over all
  repetitions (the call as one fluid transfer over its lifetime), the merged flows go through
  one ``network.transfer``, and call ``k``'s slowdown is ``sigma_k = tau_joint_k / tau_alone_k``
  (``tau``: finish of its last flow, jointly vs. with its own flows only, both on raw payload
  bytes, so the engine's achievable-fraction scaling cancels; >= 1). While the set
  persists, call ``k`` needs ``alone_s + (sigma_k - 1) bandwidth_s`` seconds, i.e. it progresses
  at ``rate_k = alone_s / (alone_s + (sigma_k - 1) bandwidth_s)`` seconds of work per second.
- Whenever a call starts or finishes, the rates of the calls in its conflict set are
  recomputed, each one's remaining work is advanced at its old rate, and its completion is
  re-armed (a fresh SimPy timeout takes over the processes waiting on the stale one). Joint
  costings are memoised by the multiset of requests in flight, so a pattern that repeats
  every micro-batch is costed once, and by the content of the merged flows (in the same
  order), so requests with the same flows (a reduce-scatter and the all-gather of the same
  group) share one costing; times alone likewise. Only finish times are asked for
  (``network.finish_s`` where the model has it), never the per-link loads. (In full-rank
  mode the groups of one call instance are separate flights that share one rate: the engine
  costed them together already.)

Why this scheme: the scheduler never computes physics (docs/architecture.md, conventions); it only asks the engine for
a call's time and the network model for merged transfers, at the granularity of calls (one
event per call start or end, never per packet). Merging whole calls assumes their phases
interleave evenly (the time-average of a call's link load), the natural fluid picture when
calls of unrelated stages overlap at arbitrary offsets. With the ``analytical`` model a set
of calls that shares no link runs exactly as alone, and on a shared link each flow finishes
at its processor-sharing time (a small pipeline send beside a large reduce-scatter flow takes
about twice its own time, not the reduce-scatter's); with ``flow`` the merged transfer is
max-min fair across all links.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from oassim.collectives import CollectiveRequest
from oassim.network.base import Flows
from oassim.workload.steps import CollectiveCall

__all__ = ["CallInfo", "Flight", "CommModel"]


@dataclass(eq=False)
class CallInfo:
    """What the engine answered for one distinct request, plus what contention needs.

    Attributes
    ----------
    index : int
        Position in :attr:`CommModel.infos`.
    request : CollectiveRequest
    result : CollectiveResult
    alone_s, bandwidth_s : float
        Time alone and its bandwidth-bound part, s.
    links : ndarray of int64
        Sorted ids of the links the call loads (any phase).
    tier_busy_s, tier_bytes : ndarray of float64, shape (n_tiers,)
        Busy seconds and payload bytes per link tier over the whole call.
    bottleneck_tier : str
        Tier of the most utilised link ("-" when no link carried anything).
    bottleneck_util : float
        Highest utilisation of a link of that tier over the call alone (0..1).
    """

    index: int
    request: CollectiveRequest
    result: Any
    alone_s: float
    bandwidth_s: float
    links: np.ndarray
    tier_busy_s: np.ndarray
    tier_bytes: np.ndarray
    bottleneck_tier: str = "-"
    bottleneck_util: float = 0.0
    flows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    tau_alone_s: float | None = None
    digest: bytes | None = None


class Flight:
    """One collective instance in flight (a call at one micro-batch; in full-rank mode, one
    of its groups).

    Attributes
    ----------
    info : CallInfo
    call : CollectiveCall
    stage, microbatch, chunk, group : int
        Where it was issued (``group`` -1 when the instance covers every group).
    start_s, end_s : float
        Transfer start and end, s (``end_s`` None until it completes).
    callbacks : list of callable
        Called with the flight when it completes, before the processes waiting for it resume.
    """

    __slots__ = ("info", "call", "stage", "microbatch", "chunk", "group", "start_s", "end_s", "remaining",
                 "rate", "t_last", "done", "armed", "callbacks", "index", "code", "unit")

    def __init__(self, info: CallInfo, call: CollectiveCall, stage: int, microbatch: int, chunk: int, group: int):
        self.info, self.call, self.stage = info, call, stage
        self.microbatch, self.chunk, self.group = microbatch, chunk, group
        self.start_s = 0.0
        self.end_s: float | None = None
        self.remaining = 0.0
        self.rate = 1.0
        self.t_last = 0.0
        self.done: Any = None  # the event processes wait on (a timeout once armed)
        self.armed = False
        self.callbacks: list[Callable[["Flight"], None]] = []
        self.index = self.code = -1  # set by the recorder
        self.unit: Any = None  # flights sharing a unit share one rate (None: its own)


class CommModel:
    """Costs calls with a collective engine and runs them as fluid jobs on a SimPy clock.

    Parameters
    ----------
    env : simpy.Environment
    engine : CollectiveEngine or compatible
        Needs ``run(request)``; for joint costing also ``phases(request, algorithm)``,
        ``network.transfer(flows, salt)``, ``salt`` and ``fabric``.
    n_tiers : int
        Link tiers of the fabric.
    """

    def __init__(self, env: Any, engine: Any, n_tiers: int):
        self.env = env
        self.engine = engine
        self.n_tiers = n_tiers
        self.infos: list[CallInfo] = []
        self._by_call: dict[int, tuple[CollectiveCall, CallInfo]] = {}
        self._by_key: dict[tuple, CallInfo] = {}
        self._units: dict[Any, list] = {}  # unit -> [info index, flights, rate]
        self._by_info: dict[int, list[Any]] = {}  # info index -> units in flight
        self._nbrs: dict[int, frozenset[int]] = {}
        self._index_n = 0
        self._bits: list[np.ndarray] = []  # per 64 requests: a bit mask of the requests on each link
        self._joint: dict[tuple[int, ...], dict[int, float]] = {}
        self._joint_flows: dict[tuple[bytes, ...], list[float | None]] = {}  # by the flows' content
        self._tau_flows: dict[bytes, float] = {}
        self.stats = {"calls": 0, "joint_costings": 0, "joint_hits": 0, "rearms": 0}

    # ------------------------------------------------------------------ costing
    def info(self, call: CollectiveCall) -> CallInfo:
        """The :class:`CallInfo` of ``call`` (engine asked once per distinct request)."""
        hit = self._by_call.get(id(call))
        if hit is not None and hit[0] is call:
            return hit[1]
        key = (call.op, call.size_bytes, id(call.groups))
        info = self._by_key.get(key)
        if info is None:
            req = CollectiveRequest(call.op, call.size_bytes, call.groups, source=f"plan call {call.where}")
            info = self._by_key.get(("req", req.key()))
            if info is None:
                info = self._cost(req)
                self._by_key[("req", req.key())] = info
            self._by_key[key] = info
        self._by_call[id(call)] = (call, info)
        return info

    def _cost(self, req: CollectiveRequest) -> CallInfo:
        res = self.engine.run(req)
        alone = float(res.time_s)
        bw = sum(p.repeat * p.transfer_s for p in getattr(res, "phases", ()))
        bw = min(max(bw, 0.0), alone)
        carried = res.loaded_bytes > 0
        links = res.links[carried]
        lb, busy = res.loaded_bytes[carried], res.loaded_busy_s[carried]
        t = np.asarray(res.link_tier)[links].astype(np.int64)
        tb = np.bincount(t, weights=busy, minlength=self.n_tiers)[: self.n_tiers]
        tby = np.bincount(t, weights=lb, minlength=self.n_tiers)[: self.n_tiers]
        b_tier, b_util = "-", 0.0
        if len(links) and alone > 0 and np.any(busy > 0):
            # as CollectiveResult.bottleneck_tier / tier_utilisation, on the loaded links only
            i = int(np.argmax(busy))
            b_tier = str(res.link_tier_names[int(t[i])])
            b_util = float(min(busy[t == t[i]].max() / alone, 1.0))
        info = CallInfo(len(self.infos), req, res, alone, bw, links, tb, tby, b_tier, b_util)
        self.infos.append(info)
        return info

    # ------------------------------------------------------------------ flights
    def event(self, fl: Flight) -> Any:
        """The event a process yields to wait for ``fl`` (only while ``fl.end_s`` is None)."""
        if fl.done is None:
            fl.done = self.env.event()  # placeholder until the flight starts
        return fl.done

    def start(self, fl: Flight) -> None:
        """Start ``fl`` now; processes waiting on :meth:`event` resume when its (possibly
        slowed) work is done. Flights with the same ``unit`` (the groups of one full-rank call
        instance) share one rate; any other two flights in flight contend if their links meet."""
        now = self.env.now
        fl.start_s = fl.t_last = now
        fl.remaining = fl.info.alone_s
        self.stats["calls"] += 1
        if fl.remaining <= 0.0:
            self._complete(fl)
            if fl.done is not None:
                fl.done.succeed()
            return
        u = fl if fl.unit is None else fl.unit
        unit = self._units.get(u)
        if unit is not None:
            unit[1].append(fl)
            fl.rate = unit[2]
            self._arm(fl)
            return
        k = fl.info.index
        self._units[u] = [k, [fl], 1.0]
        same = self._by_info.setdefault(k, [])
        same.append(u)
        by = self._by_info
        if not len(fl.info.links) or (len(same) == 1 and not any(j in by for j in self._neighbours(k))):
            fl.rate = 1.0
            self._arm(fl)
            return
        self._update(self._component(u))

    def _arm(self, fl: Flight) -> None:
        """(Re-)schedule the completion of ``fl`` at ``now + remaining / rate``: a fresh timeout
        takes over the waiting processes of the previous event, which is left to fire empty."""
        t = self.env.timeout(max(fl.remaining / fl.rate, 0.0))
        old = fl.done
        t.callbacks.append(lambda _ev, fl=fl, t=t: self._wake(fl, t))
        if old is not None and old.callbacks:
            waiters = old.callbacks[1:] if fl.armed else old.callbacks
            t.callbacks.extend(waiters)
            old.callbacks.clear()
        fl.done, fl.armed = t, True

    def _wake(self, fl: Flight, t: Any) -> None:
        if fl.done is not t:
            return  # pragma: no cover - a re-armed timeout has no callbacks left
        u = fl if fl.unit is None else fl.unit
        unit = self._units[u]
        unit[1].remove(fl)
        gone = not unit[1]
        if gone:  # leave the in-flight set before the callbacks start the next calls
            del self._units[u]
            same = self._by_info[unit[0]]
            same.remove(u)
            if not same:
                del self._by_info[unit[0]]
        self._complete(fl)
        if gone:
            self._release(unit[0])

    def _complete(self, fl: Flight) -> None:
        fl.end_s = self.env.now
        fl.remaining = 0.0
        for cb in fl.callbacks:
            cb(fl)

    def _release(self, k: int) -> None:
        """Re-rate the units that conflicted with a unit of request ``k``, which just left."""
        by = self._by_info
        seen: set[Any] = set()
        for j in self._touching(k):
            for u in by.get(j, ()):
                if u not in seen:
                    comp = self._component(u)
                    seen |= comp
                    self._update(comp)

    def _update(self, comp: frozenset[Any]) -> None:
        rates = self._rates(comp)
        now = self.env.now
        for u in comp:
            unit = self._units[u]
            r = rates[unit[0]]
            unit[2] = r
            for f in unit[1]:
                if f.armed and r == f.rate:
                    continue
                f.remaining = max(f.remaining - (now - f.t_last) * f.rate, 0.0)
                f.t_last = now
                f.rate = r
                if f.armed:
                    self.stats["rearms"] += 1
                self._arm(f)

    # ------------------------------------------------------------------ conflicts
    def _neighbours(self, k: int) -> frozenset[int]:
        """Requests whose link sets intersect that of request ``k`` (itself excluded)."""
        nb = self._nbrs.get(k)
        if nb is not None:
            return nb
        if self._index_n != len(self.infos):  # new requests: add their bits to the link masks
            n_links = self.engine.fabric.n_links
            for info in self.infos[self._index_n:]:
                w, bit = divmod(info.index, 64)
                while len(self._bits) <= w:
                    self._bits.append(np.zeros(n_links, dtype=np.uint64))
                self._bits[w][info.links] |= np.uint64(1 << bit)  # (a repeated id writes the same word)
            self._index_n = len(self.infos)
            self._nbrs = {}
        links = self.infos[k].links
        found: list[int] = []
        for w, bits in enumerate(self._bits):
            if len(links):
                word = np.bitwise_or.reduce(bits[links])
                if word:
                    on = np.flatnonzero(np.unpackbits(np.array([word], dtype=np.uint64).view(np.uint8),
                                                      bitorder="little"))
                    found.extend((on + 64 * w).tolist())
        nb = frozenset(found) - {k}
        self._nbrs[k] = nb
        return nb

    def _touching(self, k: int) -> tuple[int, ...]:
        """Requests whose calls contend with a call of request ``k``: itself (another instance
        of the same request loads the same links) and its neighbours; none without links."""
        if not len(self.infos[k].links):
            return ()
        return (k, *self._neighbours(k))

    def _component(self, u: Any) -> frozenset[Any]:
        """Units in flight connected to unit ``u`` through shared links."""
        by, units = self._by_info, self._units
        comp = {u}
        todo = [u]
        while todo:
            k = units[todo.pop()][0]
            for j in self._touching(k):
                for v in by.get(j, ()):
                    if v not in comp:
                        comp.add(v)
                        todo.append(v)
        return frozenset(comp)

    # ------------------------------------------------------------------ joint costing
    def _rates(self, comp: frozenset[Any]) -> dict[int, float]:
        """Rate of each request of a set of units in flight (memoised by the multiset of requests)."""
        order = tuple(sorted(self._units[u][0] for u in comp))
        if len(order) == 1:
            return {order[0]: 1.0}
        hit = self._joint.get(order)
        if hit is not None:
            self.stats["joint_hits"] += 1
            return hit
        self.stats["joint_costings"] += 1
        parts = [self._flows(self.infos[j]) for j in order]
        key = tuple(self.infos[j].digest for j in order)
        per_part = self._joint_flows.get(key)
        if per_part is None:  # not costed before under other requests with the same flows
            counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
            finish = self._finish_parts(parts)
            bounds = np.concatenate(([0], np.cumsum(counts)))
            per_part = [float(finish[bounds[i]:bounds[i + 1]].max()) if counts[i] else None
                        for i in range(len(order))]
            self._joint_flows[key] = per_part
        tau: dict[int, float] = {}
        for j, t in zip(order, per_part):
            if t is not None:
                tau[j] = max(tau.get(j, 0.0), t)
        out: dict[int, float] = {}
        for j in set(order):
            info = self.infos[j]
            alone = self._tau_alone(info)
            sigma = max(tau.get(j, 0.0) / alone, 1.0) if alone > 0 else 1.0
            extra = (sigma - 1.0) * info.bandwidth_s
            out[j] = info.alone_s / (info.alone_s + extra) if info.alone_s > 0 else 1.0
        self._joint[order] = out
        return out

    def _flows(self, info: CallInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All phases of the call as one set of flows: fabric nodes and bytes over all repetitions."""
        if info.flows is None:
            eng = self.engine
            phases = eng.phases(info.request, info.result.algorithm)
            acc = eng.fabric.accel_node
            src = np.concatenate([p.src for p in phases]) if phases else np.zeros(0, dtype=np.int64)
            dst = np.concatenate([p.dst for p in phases]) if phases else np.zeros(0, dtype=np.int64)
            size = np.concatenate([p.size_bytes * p.repeat for p in phases]) if phases else np.zeros(0)
            info.flows = (acc[src], acc[dst], size)
            h = hashlib.sha256(repr([(len(x), x.dtype.str) for x in info.flows]).encode())
            for x in info.flows:
                h.update(memoryview(np.ascontiguousarray(x)).cast("B"))
            info.digest = h.digest()
        return info.flows

    def _tau_alone(self, info: CallInfo) -> float:
        if info.tau_alone_s is None:
            src, dst, size = self._flows(info)
            tau = self._tau_flows.get(info.digest)
            if tau is None:  # (another request, e.g. the all-gather of a reduce-scatter, may have its flows)
                tau = self._tau_flows[info.digest] = self._finish(Flows(src, dst, size))[0]
            info.tau_alone_s = tau
        return info.tau_alone_s

    def _finish_parts(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
        """Each flow's finish when the calls' flows ``parts`` are costed together, s: part by
        part where the model can (each call's flows were routed when it was costed alone)."""
        fin = getattr(self.engine.network, "finish_parts_s", None)
        if fin is not None:
            return np.asarray(fin([Flows(*p) for p in parts], self.engine.salt))
        return self._finish(Flows(*(np.concatenate([p[i] for p in parts]) for i in range(3))))[1]

    def _finish(self, flows: Flows) -> tuple[float, np.ndarray]:
        """When the last of ``flows`` costed together on the run's network model finishes, and
        each one's finish, s (without the per-link loads where the model can skip them)."""
        net = self.engine.network
        fin = getattr(net, "finish_s", None)
        if fin is not None:  # the models' time_s is the largest finish (0 without flows)
            finish = np.asarray(fin(flows, self.engine.salt))
            return (float(finish.max()) if len(finish) else 0.0), finish
        res = net.transfer(flows, self.engine.salt)
        return float(res.time_s), np.asarray(res.flow_finish_s)
