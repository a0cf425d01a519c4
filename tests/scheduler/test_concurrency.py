"""Calls that overlap in time are costed jointly on the network model (oassim.scheduler.comm)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from oassim.collectives import CollectiveEngine
from oassim.scheduler import simulate
from oassim.scheduler.comm import CommModel, Flight
from oassim.workload import CollectiveCall
from tests.scheduler.conftest import plan_of


def _pairs(*pairs):
    g = np.array(pairs, dtype=np.int64)
    g.setflags(write=False)
    return g


def _run_together(fabric, network, calls, starts=None):
    """Start every call (at ``starts``, default 0) on one CommModel; return (end, alone) lists."""
    env = simpy.Environment()
    comm = CommModel(env, CollectiveEngine(fabric, network), len(fabric.link_tier_names))
    flights = [Flight(comm.info(c), c, 0, 0, 0, -1) for c in calls]
    for f, t in zip(flights, starts or [0.0] * len(calls)):
        env.process(_later(env, comm, f, t))
    env.run()
    return [f.end_s - f.start_s for f in flights], [f.info.alone_s for f in flights], comm


def _later(env, comm, f, t):
    yield env.timeout(t)
    comm.start(f)


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_calls_sharing_a_bottleneck_link_each_take_longer(dgx32, network):
    """Two transfers from rank 0 to rank 8 (same NIC and leaf links) both finish later than alone."""
    a = CollectiveCall("pp", "send_recv", 64e6, _pairs((0, 8)), True, "a")
    b = CollectiveCall("dp", "send_recv", 32e6, _pairs((0, 8)), True, "b")
    took, alone, comm = _run_together(dgx32, network, [a, b])
    assert took[0] > 1.2 * alone[0] and took[1] > 1.2 * alone[1]
    assert comm.stats["joint_costings"] >= 1


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_disjoint_calls_run_at_their_alone_speed(dgx32, network):
    """Rank 0 -> 8 (rail 0) and rank 1 -> 9 (rail 1) share no link: each takes its alone time."""
    a = CollectiveCall("pp", "send_recv", 64e6, _pairs((0, 8)), True, "a")
    b = CollectiveCall("pp", "send_recv", 32e6, _pairs((1, 9)), True, "b")
    took, alone, comm = _run_together(dgx32, network, [a, b])
    assert took == pytest.approx(alone, rel=1e-12)
    assert comm.stats["joint_costings"] == 0


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_small_send_beside_a_big_reduce_scatter_shares_the_nic_fairly(dgx32, network):
    """A 16 MB pipeline send 0 -> 8 beside a 2 GB data-parallel reduce-scatter over ranks 0, 8,
    16, 24 (its ring flow 0 -> 8 takes the same NIC and leaf links): the send gets half the links
    while it lasts, so its bandwidth part doubles (took = alone + bandwidth_s, within 1%), and it
    does not wait for the reduce-scatter (which takes about 85 times the send alone); the
    reduce-scatter is slowed by less than the send's own duration."""
    rs = CollectiveCall("dp", "reduce_scatter", 2e9, _pairs((0, 8, 16, 24)), True, "rs")
    pp = CollectiveCall("pp", "send_recv", 16e6, _pairs((0, 8)), True, "pp")
    took, alone, comm = _run_together(dgx32, network, [rs, pp])
    info = comm.info(pp)
    assert alone[0] > 50 * alone[1]
    assert took[1] == pytest.approx(alone[1] + info.bandwidth_s, rel=0.01)
    assert alone[0] < took[0] < alone[0] + alone[1]


def test_a_late_call_slows_only_the_overlapping_part(dgx32):
    """A call starting halfway through another stretches it by less than full sharing would."""
    a = CollectiveCall("pp", "send_recv", 64e6, _pairs((0, 8)), True, "a")
    b = CollectiveCall("dp", "send_recv", 64e6, _pairs((0, 8)), True, "b")
    full, alone, _ = _run_together(dgx32, "analytical", [a, b])
    late, _, _ = _run_together(dgx32, "analytical", [a, b], starts=[0.0, alone[0] / 2])
    assert alone[0] < late[0] < full[0]


def test_joint_costings_are_memoised_by_the_set_in_flight(dgx32):
    """Repeating the same overlapping pair costs the set once."""
    a = CollectiveCall("pp", "send_recv", 64e6, _pairs((0, 8)), True, "a")
    b = CollectiveCall("dp", "send_recv", 32e6, _pairs((0, 8)), True, "b")
    env = simpy.Environment()
    comm = CommModel(env, CollectiveEngine(dgx32), len(dgx32.link_tier_names))

    def twice():
        for _ in range(2):
            fa, fb = Flight(comm.info(a), a, 0, 0, 0, -1), Flight(comm.info(b), b, 0, 0, 0, -1)
            comm.start(fa)
            comm.start(fb)
            yield comm.event(fa)
            if fb.end_s is None:
                yield comm.event(fb)

    env.process(twice())
    env.run()
    assert comm.stats["joint_costings"] == 1 and comm.stats["joint_hits"] >= 1


def test_replayed_calls_never_beat_their_alone_time(dgx64):
    """In a replay with overlapped DP buckets and pipeline sends, every call takes >= its alone time."""
    plan = plan_of(dgx64, framework="megatron-core", tp=2, pp=2, dp=16, global_batch=64)
    res = simulate(plan, dgx64)
    c = res.collectives
    assert (c["time_s"] >= c["alone_s"] * (1 - 1e-9)).all()
