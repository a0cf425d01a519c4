"""The collective engine: costs an algorithm's phases on a network model, memoised.

What is modelled (docs/architecture.md decision 6). A request's algorithm gives phases of rank-to-rank
flows; the engine maps ranks to fabric nodes and asks the network model how long each phase
takes with the flows of *every* concurrent group in one ``Flows``, so groups contend for the
links they share. Phase ``i`` then costs

    repeat_i * (transfer_i + (steps_i - 1) * latency_i + steps_i * step_overhead)

and the collective ``launch_overhead + sum_i phase_i``. ``transfer_i`` is the network model's
time for one repetition, with each flow's bytes divided by the achievable fraction of the link
level it uses (scale-up inside a domain, scale-out across) and, for in-network phases, by the
in-network fraction; ``latency_i`` is the phase's longest path latency (extra pipeline steps
pay it again). The fractions and overheads are the tuning profile's
(:mod:`~oassim.collectives.tuning`).

Why it is cheap at 10^4-10^5 ranks:

- identical steps are one phase with a repeat count (a ring all-reduce is one transfer);
- equal phases (same flows and bytes) are costed once per engine (phase cache), e.g. the
  reduce-scatter and all-gather halves of a hierarchical all-reduce;
- domain symmetry: a phase whose flows all stay inside scale-up domains, with every domain
  running the same local pattern, is costed on one representative domain and its link loads
  replicated (domains are stamped copies with disjoint links, so this is exact up to ECMP hash
  choices);
- identical requests are memoised (op, algorithm, size, groups, root, matrix, network).

``auto`` costs every algorithm that fits on the network model asked for (the analytical one
for ``analytical``, as NCCL's tuner uses a cost model, not trial runs; the ``flow`` model for
``flow``, unless the candidates together list more than ``AUTO_FLOW_MAX_FLOWS`` flows, when it
compares analytical estimates), picks the cheapest, reports all the estimates and, in the
result's notes, the model they were compared on and why.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from oassim.collectives.algorithms import ALGORITHMS
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase
from oassim.collectives.results import CollectiveResult, PhaseCost
from oassim.collectives.tuning import Tuning, load_tuning
from oassim.errors import SpecError
from oassim.network.analytical import stripe
from oassim.network.base import Flows, NetworkModel
from oassim.network.registry import make_network
from oassim.topology.fabric import Fabric

__all__ = ["CollectiveEngine", "AUTO_FLOW_MAX_FLOWS"]

AUTO_FLOW_MAX_FLOWS = 1_000_000
"""Listed flows (all candidates together) up to which ``auto`` under the ``flow`` model costs
every candidate on it; beyond, it compares analytical estimates and the result says so."""


@dataclass(frozen=True)
class _Costed:
    """One repetition of a phase on one network: time, latency, sparse link loads."""

    transfer_s: float
    latency_s: float  # longest path latency; 0 until needed (latency_known False)
    links: np.ndarray  # int64 link ids that carried bytes
    payload: np.ndarray  # payload bytes on them
    busy_s: np.ndarray  # busy time on them
    latency_known: bool = True

    @property
    def size(self) -> int:
        return len(self.links)


class _LRU(OrderedDict):
    """Least-recently-used cache bounded by a total weight."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget = budget
        self.used = 0

    def get_item(self, key: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: Any, value: Any, weight: int) -> None:
        if key in self:
            return
        self[key] = (value, weight)
        self.used += weight
        while self.used > self.budget and len(self) > 1:
            _, (_, w) = self.popitem(last=False)
            self.used -= w


class CollectiveEngine:
    """Costs collective requests on one fabric with one network model.

    Parameters
    ----------
    fabric : Fabric
    network : str or NetworkModel
        ``"analytical"``, ``"flow"`` (see :data:`oassim.network.MODELS`) or a model instance.
    tuning : Tuning or str, optional
        A tuning profile or its name (default: the tuning file's default profile).
    caps : FabricCaps, optional
        Derived from ``fabric`` (and ``graph``) when not given.
    graph : networkx.Graph, optional
        The graph ``fabric`` was frozen from, for bare family fabrics (see FabricCaps).
    salt : int
        ECMP hash salt passed to the network model.
    cache_entries : int
        Budget of each of the phase and request caches, in stored float64 link entries
        (8 bytes each: the default bounds each cache near 400 MB).
    symmetry : bool
        Cost symmetric intra-domain phases on one representative domain (exact; turn off to
        check it).
    """

    def __init__(self, fabric: Fabric, network: str | NetworkModel = "analytical",
                 tuning: Tuning | str | None = None, caps: FabricCaps | None = None,
                 graph: Any = None, salt: int = 0, cache_entries: int = 50_000_000,
                 symmetry: bool = True):
        self.fabric = fabric
        self.network = make_network(network, fabric) if isinstance(network, str) else network
        self.tuning = tuning if isinstance(tuning, Tuning) else load_tuning(tuning)
        self.caps = caps if caps is not None else FabricCaps.from_fabric(fabric, graph)
        self.salt = int(salt)
        self.symmetry = bool(symmetry)
        self._estimator = (self.network if getattr(self.network, "name", "") == "analytical"
                           else make_network("analytical", fabric))
        unknown = sorted(set(self.tuning.auto_algorithms or ()) - set(ALGORITHMS))
        if unknown:
            raise SpecError(f"tuning profile '{self.tuning.name}' lists unknown algorithm(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(ALGORITHMS)})", path="auto_algorithms")
        self.eta_up = self.tuning.efficiency(self.caps.scaleup_techs)
        self.eta_out = self.tuning.efficiency(self.caps.scaleout_techs)
        self._link_eta = np.where(self.caps.link_scaleup, self.eta_up, self.eta_out)
        self._phases = _LRU(cache_entries)
        self._requests = _LRU(cache_entries)
        self._dom_links: tuple[np.ndarray, np.ndarray] | None = None
        self.stats = {"transfers": 0, "phase_hits": 0, "request_hits": 0, "symmetric": 0}

    def __repr__(self) -> str:
        return f"CollectiveEngine({self.fabric.name!r}, network={self.network.name!r}, tuning={self.tuning.name!r})"

    # ---------------------------------------------------------------- public API
    def run(self, request: CollectiveRequest, *, memo: bool = True) -> CollectiveResult:
        """Cost ``request``; ``auto`` picks the cheapest algorithm that fits.

        Parameters
        ----------
        request : CollectiveRequest
        memo : bool
            Use and fill the request and phase caches (False: cost everything afresh).

        Raises
        ------
        SpecError
            A rank beyond the cluster, an unknown algorithm, or one that cannot run the op on
            this fabric (the message says why).
        """
        request.check_ranks(self.caps.n_ranks)
        name = request.algorithm
        if name == "auto":
            key = (request.key(), "auto", self.network.name, self.salt)
            hit = self._requests.get_item(key) if memo else None
            if hit is not None:
                self.stats["request_hits"] += 1
                return hit[0]
            res = self._auto(request, memo)
            if memo:
                self._requests.put(key, res, 16)  # shares its arrays with the chosen entry
            return res
        if memo:  # a request costed before was checked before
            hit = self._requests.get_item((request.key(), name, self.network.name, self.salt))
            if hit is not None:
                self.stats["request_hits"] += 1
                return hit[0]
        self._check_algorithm(request, name)
        return self._evaluate(request, name, self.network, memo)

    def sweep(self, op: str, sizes: Sequence[float], groups: np.ndarray, algorithm: str = "auto",
              root: int = 0, source: str = "collective request") -> list[CollectiveResult]:
        """Cost ``op`` at every size of ``sizes`` (nccl-tests ``-b/-e/-f`` style)."""
        return [self.run(CollectiveRequest(op, s, groups, algorithm, root, source=source)) for s in sizes]

    def phases(self, request: CollectiveRequest, algorithm: str | None = None) -> list[Phase]:
        """The phases ``algorithm`` (default: the request's; not ``auto``) turns ``request`` into."""
        name = algorithm or request.algorithm
        if name == "auto":
            name = self.run(request).algorithm
        self._check_algorithm(request, name)
        return ALGORITHMS[name].phases(request, self.caps)

    def fitting(self, request: CollectiveRequest) -> dict[str, str | None]:
        """Every registered algorithm and why it cannot run ``request`` (None: it can)."""
        return {n: a.unsupported(request, self.caps) for n, a in ALGORITHMS.items()}

    def clear(self) -> None:
        """Drop the phase and request caches."""
        self._phases.clear()
        self._phases.used = 0
        self._requests.clear()
        self._requests.used = 0

    # ---------------------------------------------------------------- internals
    def _check_algorithm(self, req: CollectiveRequest, name: str) -> None:
        if name not in ALGORITHMS:
            raise SpecError(f"unknown algorithm '{name}' (allowed: auto, {', '.join(ALGORITHMS)})",
                            source=req.source, path="algorithm")
        why = ALGORITHMS[name].unsupported(req, self.caps)
        if why:
            raise SpecError(f"algorithm '{name}' cannot run {req.op} here: {why}", source=req.source, path="algorithm")

    def _auto(self, req: CollectiveRequest, memo: bool) -> CollectiveResult:
        reasons = self.fitting(req)
        allowed = self.tuning.auto_algorithms
        if allowed is not None:
            reasons = {n: w for n, w in reasons.items() if n in allowed}
        fits = [n for n, why in reasons.items() if why is None]
        if not fits:
            why = "; ".join(f"{n}: {w}" for n, w in reasons.items() if req.op in ALGORITHMS[n].ops)
            raise SpecError(f"no algorithm can run {req.op} here ({why})", source=req.source, path="algorithm")
        # estimates need only each candidate's time: the dense link arrays are built for the
        # chosen one alone (its phases are in the phase cache by then)
        timed = {n: self._timed(req, n, self._estimator, memo) for n in fits}
        times = {n: t[2] for n, t in timed.items()}
        basis = self._estimator.name
        if self.network is not self._estimator:
            # decide on the fidelity asked for, unless that would cost too many flows
            listed = {n: sum(len(p.src) for p in ALGORITHMS[n].phases(req, self.caps)) for n in fits}
            total = sum(listed.values())
            if len(fits) > 1 and total > AUTO_FLOW_MAX_FLOWS:
                basis = (f"analytical: the {len(fits)} candidates list {total:,} flows in all, more than "
                         f"the {AUTO_FLOW_MAX_FLOWS:,} auto costs on the {self.network.name} model")
            else:
                times = {n: self._timed(req, n, self.network, memo)[2] for n in fits}
                basis = self.network.name
        best = min(fits, key=lambda n: (times[n], fits.index(n)))
        # where the fabric's own algorithm does not fit, the result says so (no silent fallback)
        grid = self.caps.grid[0] if self.caps.grid is not None else None
        notes = tuple(f"{n} not used: {why}" for n, why in reasons.items()
                      if why and grid in ALGORITHMS[n].families and req.op in ALGORITHMS[n].ops)
        if self.network is not self._estimator:
            notes += (f"auto compared the candidates on the {basis} model" if " " not in basis
                      else f"auto compared the candidates on the {basis}",)
        # on the estimator's model the chosen candidate's phases and costs are already at hand
        known = timed[best] if self.network is self._estimator else None
        return replace(self._evaluate(req, best, self.network, memo, known), candidates=times, notes=notes)

    def _evaluate(self, req: CollectiveRequest, name: str, net: NetworkModel, memo: bool,
                  timed: tuple | None = None) -> CollectiveResult:
        key = (req.key(), name, net.name, self.salt)
        if memo:
            hit = self._requests.get_item(key)
            if hit is not None:
                self.stats["request_hits"] += 1
                return hit[0]
        # ``timed``: what _timed(req, name, net, memo) returned (deterministic: the same again)
        phases, (costed, times), total, protocol = timed if timed is not None else self._timed(req, name, net, memo)
        costs = [PhaseCost(p.label, p.repeat, p.steps, p.n_flows, p.in_network, c.transfer_s, c.latency_s, t,
                           p.total_bytes) for p, c, t in zip(phases, costed, times)]
        links, loads = _sum_loads(phases, costed, self.fabric.n_links)
        res = CollectiveResult(
            op=req.op, algorithm=name, size_bytes=req.size_bytes, group_size=req.group_size,
            n_groups=req.n_groups, network=net.name, tuning=self.tuning.name, protocol=protocol, time_s=total,
            phases=tuple(costs), links=links.astype(np.int64), loaded_bytes=loads[0], loaded_busy_s=loads[1],
            n_links=self.fabric.n_links, link_tier=self.fabric.link_tier, link_tier_names=self.fabric.link_tier_names,
        )
        if memo:
            self._requests.put(key, res, 3 * len(links) + 16)
        return res

    def _timed(self, req: CollectiveRequest, name: str, net: NetworkModel,
               memo: bool) -> tuple[list[Phase], tuple[list[_Costed], list[float]], float, str]:
        """The phases of ``name`` for ``req``, each one's cost and time, the total time and the
        protocol that gives it (``simple``, or ``ll`` when the tuning's LL protocol is faster)."""
        phases = ALGORITHMS[name].phases(req, self.caps)
        costed = [self._cost_phase(p, net, memo) for p in phases]
        t = self.tuning

        def timed(launch: float, step: float, bw: float) -> tuple[list[float], float]:
            times = [p.repeat * (_at_bandwidth(c, bw) + (p.steps - 1) * c.latency_s + p.steps * step)
                     for p, c in zip(phases, costed)]
            return times, float(sum(times)) + (launch if phases else 0.0)

        times, total = timed(t.launch_s, t.step_s, 1.0)
        if t.low_latency is None or not phases or any(p.in_network for p in phases):
            return phases, (costed, times), total, "simple"
        launch, step, bw = t.low_latency
        # LL moves bytes at bw < 1: every phase takes at least its Simple transfer time, so
        # unless the overheads LL saves could pay for that, it cannot win (no path latencies
        # needed); otherwise cost it exactly
        bound = launch + sum(p.repeat * (c.transfer_s + (p.steps - 1) * c.latency_s + p.steps * step)
                             for p, c in zip(phases, costed))
        if bound >= total:
            return phases, (costed, times), total, "simple"
        costed = [self._with_latency(p, c, net, memo) for p, c in zip(phases, costed)]
        ll_times, ll_total = timed(launch, step, bw)
        if ll_total >= total:
            return phases, (costed, times), total, "simple"
        # under LL a transfer, and every link it loads, takes 1 / bw times longer
        costed = [replace(c, busy_s=c.busy_s / bw, transfer_s=_at_bandwidth(c, bw)) for c in costed]
        return phases, (costed, ll_times), ll_total, "ll"

    def _with_latency(self, p: Phase, c: _Costed, net: NetworkModel, memo: bool) -> _Costed:
        """``c`` with the phase's longest path latency filled in (and cached)."""
        if c.latency_known:
            return c
        src, dst, wire, _ = self._phase_flows(p)
        c = replace(c, latency_s=float(stripe(self.fabric, Flows(src, dst, wire), self.salt).latency_s.max()),
                    latency_known=True)
        if memo:
            key = (p.digest(), net.name, self.salt)
            if key in self._phases:
                self._phases[key] = (c, self._phases[key][1])
        return c

    def _cost_phase(self, p: Phase, net: NetworkModel, memo: bool) -> _Costed:
        if not memo:
            return self._cost_flows(p, net)
        key = (p.digest(), net.name, self.salt)
        hit = self._phases.get_item(key)
        if hit is not None:
            self.stats["phase_hits"] += 1
            return hit[0]
        c = self._cost_flows(p, net)
        self._phases.put(key, c, 3 * c.size + 8)
        return c

    def _phase_flows(self, p: Phase) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Fabric nodes and wire bytes of a phase's flows (one representative domain's when the
        phase is domain-symmetric, with the symmetry as the fourth item, else None)."""
        f = self.fabric
        src, dst = f.accel_node[p.src], f.accel_node[p.dst]
        dom = self.caps.domain_of_rank
        same = dom[p.src] == dom[p.dst]
        eta = np.where(same, self.eta_up, self.eta_out)
        if p.in_network:
            eta = eta * self.tuning.in_network_efficiency
        wire = p.size_bytes / eta
        sym = self._symmetric(src, dst, wire) if self.symmetry and bool(same.all()) else None
        if sym is not None:
            rep = sym[0]
            src, dst, wire = src[rep], dst[rep], wire[rep]
        return src, dst, wire, sym

    def _cost_flows(self, p: Phase, net: NetworkModel) -> _Costed:
        f = self.fabric
        src, dst, wire, sym = self._phase_flows(p)
        if sym is not None:
            _, doms, d0 = sym
            self.stats["symmetric"] += 1
        flows = Flows(src, dst, wire, p.count if sym is None else None)
        if p.bundles is not None and sym is None:  # flows standing for every rank behind a leaf
            from oassim.collectives.algorithms.all_to_all_bundles import bundled_transfer

            res = bundled_transfer(net, flows, p.bundles, self.salt)
        else:
            res = net.transfer(flows, self.salt)
        self.stats["transfers"] += 1
        lat = 0.0
        if p.steps > 1 and len(src):  # extra steps pay the path latency again
            lat = float(stripe(f, Flows(src, dst, wire), self.salt).latency_s.max())
        links = np.flatnonzero(res.link_bytes > 0)
        scale = self._link_eta[links] * (self.tuning.in_network_efficiency if p.in_network else 1.0)
        payload = res.link_bytes[links] * scale
        busy = res.link_busy_s[links]
        if sym is not None:
            links, payload, busy = self._replicate(links, payload, busy, doms, d0)
        # in-network phases are also held to the switches' reduction / multicast rate (tuning.py),
        # a chunk still crossing the path once
        t = float(res.time_s)
        sw = self._switch_time(p)
        if sw > 0:
            path = lat if p.steps > 1 else float(stripe(f, Flows(src, dst, wire), self.salt).latency_s.max())
            t = max(t, sw + path)
        # a single-step phase needs its path latency only if the LL protocol is costed
        return _Costed(t, lat, links.astype(np.int64), payload, busy,
                       latency_known=p.steps > 1 or not len(src))

    def _switch_time(self, p: Phase) -> float:
        """Time the switches' reduction / multicast engines need for ``p`` (0: no limit)."""
        if not p.in_network or p.switch_bytes <= 0:
            return 0.0
        dom = self.caps.domain_of_rank
        spans = bool(np.any(dom[p.src] != dom[p.dst]))
        rate = self.tuning.switch_limit(self.caps.scaleout_switches if spans else self.caps.scaleup_switches)
        return p.switch_bytes / rate if rate else 0.0

    def _symmetric(self, src: np.ndarray, dst: np.ndarray, wire: np.ndarray):
        """Representative flows if every domain runs the same local pattern (else None)."""
        dn = self.caps.domain_nodes
        if dn is None or len(src) < 2:
            return None
        d = src // dn
        order = np.argsort(d, kind="stable")
        ds = d[order]
        cut = np.flatnonzero(ds[1:] != ds[:-1]) + 1
        D = len(cut) + 1
        if D < 2 or len(src) % D or np.any(np.diff(np.concatenate(([0], cut, [len(src)]))) != len(src) // D):
            return None
        k = len(src) // D
        for attempt in range(2):
            if attempt:  # same pattern listed in another order: sort each domain's flows
                order = np.lexsort((wire, dst - d * dn, src - d * dn, d))
            ls = (src - d * dn)[order].reshape(D, k)
            ld = (dst - d * dn)[order].reshape(D, k)
            w = wire[order].reshape(D, k)
            if np.array_equal(ls, np.broadcast_to(ls[:1], ls.shape)) and np.array_equal(
                    ld, np.broadcast_to(ld[:1], ld.shape)) and np.allclose(w, w[:1], rtol=1e-12, atol=0):
                return order[:k], ds[np.concatenate(([0], cut))], int(ds[0])
        return None

    def _domain_links(self) -> tuple[np.ndarray, np.ndarray]:
        """Links inside stamped domains: (domain, template index) of every link, and the
        (n_domains, links per domain) table back to link ids. Built once per engine."""
        if self._dom_links is None:
            f, dn = self.fabric, self.caps.domain_nodes
            n_dom = self.caps.n_domains
            inside = (f.link_src < n_dom * dn) & (f.link_dst < n_dom * dn)
            inside &= (f.link_src // dn) == (f.link_dst // dn)
            ids = np.flatnonzero(inside)
            dom = f.link_src[ids] // dn
            local_key = (f.link_src[ids] % dn) * dn + f.link_dst[ids] % dn
            order = np.lexsort((local_key, dom))
            counts = np.bincount(dom, minlength=n_dom)
            per = int(counts.max()) if len(counts) else 0
            if not np.all(counts == per):
                raise ValueError("stamped domains differ in their links")
            table = ids[order].reshape(n_dom, per)
            where = np.full((f.n_links, 2), -1, dtype=np.int64)
            where[table.ravel(), 0] = np.repeat(np.arange(n_dom), per)
            where[table.ravel(), 1] = np.tile(np.arange(per), n_dom)
            self._dom_links = (where, table)
        return self._dom_links

    def _replicate(self, links: np.ndarray, payload: np.ndarray, busy: np.ndarray, doms: np.ndarray, d0: int):
        """Link loads of the representative domain ``d0`` copied onto every domain of ``doms``."""
        where, table = self._domain_links()
        j = where[links, 1]
        if np.any(j < 0) or np.any(where[links, 0] != d0):
            raise AssertionError("an intra-domain phase used a link outside its domain")
        reps = len(doms)
        return table[np.ix_(doms, j)].ravel(), np.tile(payload, reps), np.tile(busy, reps)


def _sum_loads(phases: list[Phase], costed: list[_Costed], n_links: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The phases' link loads (x repeat) summed per link: sorted unique link ids, and the
    payload and busy time of each. Sorting the entries when they are few, one pass over all
    links when they are many (a 10^4-rank phase touches a good part of the fabric)."""
    ids = np.concatenate([c.links for c in costed] or [np.zeros(0, np.int64)])
    reps = np.repeat([float(p.repeat) for p in phases], [c.size for c in costed]) if phases else np.zeros(0)
    values = [np.concatenate([getattr(c, f) for c in costed] or [np.zeros(0)]) * reps for f in ("payload", "busy_s")]
    if len(ids) * 8 < n_links:
        links, at = np.unique(ids, return_inverse=True)
        return links, [np.bincount(at, weights=v, minlength=len(links)) for v in values]
    dense = [np.bincount(ids, weights=v, minlength=n_links) for v in values]
    links = np.flatnonzero((dense[0] > 0) | (dense[1] > 0))
    return links, [d[links] for d in dense]


def _at_bandwidth(c: _Costed, factor: float) -> float:
    """A phase's transfer time when its bytes move at ``factor`` of the bandwidth: the path
    latency stays, the rest stretches."""
    if factor == 1.0:
        return c.transfer_s
    lat = min(c.latency_s, c.transfer_s)
    return lat + (c.transfer_s - lat) / factor
