"""The cheaper joint costing gives the answers of the code it replaced, bit for bit.

``RefComm`` below keeps the previous implementation of :class:`oassim.scheduler.comm.CommModel`'s
conflict index and joint costing (a sorted link -> request index searched per request; every
joint set and every call alone sent through ``network.transfer``, memoised only by the set of
request indices), and the reference run also switches off what the network models now reuse
(the flow kernel's answers, the stripes of repeated flow sets) and restores the previous link
compaction. A replay on the new code must give the same iteration time, breakdown terms,
per-call start and end times and link utilisation rows as the reference run of the same plan,
exactly, on both network models and two fabrics (a rail-optimised fat-tree of DGX nodes, and
NVL72 racks whose NVLink traffic is striped over 18 switch chips).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import oassim.network.analytical as A
import oassim.network.flow as FL
from oassim.analysis.metrics import breakdown
from oassim.network.base import Flows
from oassim.scheduler import simulate
from oassim.scheduler.comm import CommModel
from oassim.topology.cluster import build_fabric
from oassim.workload import compile_plan
from tests.scheduler.conftest import TINY_GPT, plan_of

S = importlib.import_module("oassim.scheduler.simulate")  # the module (the package exports the function)


def _old_compact_links(links, n_links):
    links = np.ascontiguousarray(links, dtype=np.int64)
    if len(links) * 8 < n_links:
        used, local = np.unique(links, return_inverse=True)
        return used, np.ascontiguousarray(local.ravel(), dtype=np.int64)
    mark = np.zeros(n_links, dtype=np.bool_)
    mark[links] = True
    used = np.flatnonzero(mark)
    index = np.empty(n_links, dtype=np.int64)
    index[used] = np.arange(len(used))
    return used, index[links]


class RefComm(CommModel):
    """The previous conflict index and joint costing."""

    def _neighbours(self, k):
        nb = self._nbrs.get(k)
        if nb is not None:
            return nb
        if getattr(self, "_ref_n", -1) != len(self.infos):
            own = np.concatenate([np.full(len(i.links), i.index, dtype=np.int64) for i in self.infos] or
                                 [np.zeros(0, dtype=np.int64)])
            lk = np.concatenate([i.links for i in self.infos] or [np.zeros(0, dtype=np.int64)])
            order = np.lexsort((own, lk))
            self._lk, self._own = lk[order], own[order]
            self._ref_n = len(self.infos)
            self._nbrs = {}
        links = self.infos[k].links
        lo = np.searchsorted(self._lk, links, "left")
        cnt = np.searchsorted(self._lk, links, "right") - lo
        total = int(cnt.sum())
        if total <= len(links):
            nb = frozenset()
        else:
            idx = np.repeat(lo, cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
            nb = frozenset(np.unique(self._own[idx]).tolist()) - {k}
        self._nbrs[k] = nb
        return nb

    def _rates(self, comp):
        order = tuple(sorted(self._units[u][0] for u in comp))
        if len(order) == 1:
            return {order[0]: 1.0}
        hit = self._joint.get(order)
        if hit is not None:
            self.stats["joint_hits"] += 1
            return hit
        self.stats["joint_costings"] += 1
        parts = [self._flows(self.infos[j]) for j in order]
        counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
        src = np.concatenate([p[0] for p in parts])
        dst = np.concatenate([p[1] for p in parts])
        size = np.concatenate([p[2] for p in parts])
        res = self.engine.network.transfer(Flows(src, dst, size), self.engine.salt)
        finish = np.asarray(res.flow_finish_s)
        bounds = np.concatenate(([0], np.cumsum(counts)))
        tau = {}
        for i, j in enumerate(order):
            if counts[i]:
                tau[j] = max(tau.get(j, 0.0), float(finish[bounds[i]:bounds[i + 1]].max()))
        out = {}
        for j in set(order):
            info = self.infos[j]
            alone = self._tau_alone(info)
            sigma = max(tau.get(j, 0.0) / alone, 1.0) if alone > 0 else 1.0
            extra = (sigma - 1.0) * info.bandwidth_s
            out[j] = info.alone_s / (info.alone_s + extra) if info.alone_s > 0 else 1.0
        self._joint[order] = out
        return out

    def _tau_alone(self, info):
        if info.tau_alone_s is None:
            src, dst, size = self._flows(info)
            res = self.engine.network.transfer(Flows(src, dst, size), self.engine.salt)
            info.tau_alone_s = float(res.time_s)
        return info.tau_alone_s


@pytest.fixture(scope="module")
def gb200():
    return build_fabric("gb200-nvl72", 288)  # 4 NVL72 racks on the scale-out fat-tree


def _plans(dgx64, gb200):
    yield "dgx64", dgx64, plan_of(dgx64, framework="megatron-core", tp=2, pp=2, dp=16, global_batch=64)
    train = {"global_batch": 36, "micro_batch": 1, "recompute": "none", "framework": "megatron-core"}
    yield "gb200", gb200, compile_plan(TINY_GPT, {"tp": 4, "pp": 8, "dp": 9}, "gb200", gb200, training=train)


def _summary(res):
    c = res.collectives
    util = res.link_util.select_dtypes("number").to_numpy()
    return (res.iteration_time_s, breakdown(res), c["start_s"].to_numpy(), c["end_s"].to_numpy(),
            res.provenance["comm"]["joint_costings"], util)


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_replay_equals_the_previous_joint_costing(dgx64, gb200, network, monkeypatch):
    for name, fabric, plan in _plans(dgx64, gb200):
        new = _summary(simulate(plan, fabric, network=network))
        with monkeypatch.context() as m:
            m.setattr(S, "CommModel", RefComm)
            m.setattr(FL, "MEMO_BYTES", 0)
            m.setattr(A, "STRIPE_CACHE_HOPS", 0)
            m.setattr(FL, "compact_links", _old_compact_links)
            m.setattr(A, "compact_links", _old_compact_links)
            ref = _summary(simulate(plan, fabric, network=network))
        assert ref[4] >= 1, f"{name}: no joint costing, so nothing was compared"
        assert new[0] == ref[0], name
        assert new[1] == ref[1], name  # every breakdown term
        assert np.array_equal(new[2], ref[2]) and np.array_equal(new[3], ref[3]), name
        assert len(new[5]) and np.array_equal(new[5], ref[5]), name  # link utilisation rows


def test_neighbours_equal_the_sorted_index(dgx64, gb200, monkeypatch):
    """The link bit masks find the same conflicting requests as the sorted link index, for
    every request of a replay."""
    made = []

    class Kept(CommModel):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(S, "CommModel", Kept)
    for _name, fabric, plan in _plans(dgx64, gb200):
        made.clear()
        simulate(plan, fabric, network="analytical")
        comm = made[-1]
        ref = RefComm(comm.env, comm.engine, comm.n_tiers)
        ref.infos = comm.infos
        fresh = CommModel(comm.env, comm.engine, comm.n_tiers)
        fresh.infos = comm.infos
        n = len(comm.infos)
        got = [fresh._neighbours(k) for k in range(n)]
        assert n > 3 and any(got)
        assert got == [ref._neighbours(k) for k in range(n)]


@pytest.mark.parametrize("n_links", [10, 10_000, 100_000])
def test_compact_links_equals_the_previous_one(n_links):
    rng = np.random.default_rng(n_links)
    for hops in (5, 400, 5_000):
        links = rng.integers(0, n_links, hops)
        used, local = A.compact_links(links, n_links)
        want = _old_compact_links(links, n_links)
        assert np.array_equal(used, want[0]) and np.array_equal(local, want[1])
        assert local.dtype == np.int64
    mark, _ = A._scratch(n_links)
    assert not mark.any()  # the scratch is handed back clean
