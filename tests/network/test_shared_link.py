"""The analytical model's per-link processor sharing (oassim.network.analytical): closed forms
on one link, equal sizes as the static load, aggregated flows as their members, and agreement
with the max-min ``flow`` model on a shared bottleneck."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.network import AnalyticalNetwork, FlowNetwork, Flows
from oassim.network.analytical import shared_finish_s
from tests.network.fabrics import HOST_BW, fat_tree

SAME_LEAF_LAT = 2 * 1e-7 + 2e-7  # two host links + leaf forwarding (tests/network/fabrics.py)


def _one_sender():
    """Flows from endpoint 0 to distinct endpoints of its leaf share only 0's host link."""
    f = fat_tree(16, endpoints=8)
    return f, f.routing["endpoints"]


def test_two_flows_on_one_link_closed_form():
    """b1 < b2 out of one 50 GB/s port: b1 finishes at 2 b1 / cap, b2 at (b1 + b2) / cap
    (max-min: both at cap / 2 until b1 leaves), in both models."""
    f, ep = _one_sender()
    b1, b2 = 1e8, 3e8
    flows = Flows(ep[[0, 0]], ep[[1, 2]], [b1, b2])
    want = np.array([2 * b1, b1 + b2]) / HOST_BW + SAME_LEAF_LAT
    np.testing.assert_allclose(AnalyticalNetwork(f).transfer(flows).flow_finish_s, want, rtol=1e-12)
    np.testing.assert_allclose(FlowNetwork(f).transfer(flows).flow_finish_s, want, rtol=1e-9)


def test_many_sizes_on_one_link_closed_form():
    """Five flows of 1..5 units out of one port: flow k finishes at (sum_{i<k} i + (6 - k) k) units / cap."""
    f, ep = _one_sender()
    u = 1e8
    size = np.array([3, 1, 5, 2, 4]) * u
    got = AnalyticalNetwork(f).transfer(Flows(ep[[0] * 5], ep[1:6], size)).flow_finish_s
    want = np.array([np.minimum(size, b).sum() for b in size]) / HOST_BW + SAME_LEAF_LAT
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.max() == pytest.approx(size.sum() / HOST_BW + SAME_LEAF_LAT, rel=1e-12)  # makespan = load / cap


def test_equal_sizes_finish_with_the_link_load():
    """Equal flows on one link all take load / cap (the static-load answer, unchanged)."""
    f, ep = _one_sender()
    got = AnalyticalNetwork(f).transfer(Flows(ep[[0] * 4], ep[1:5], np.full(4, 2e8))).flow_finish_s
    np.testing.assert_allclose(got, 8e8 / HOST_BW + SAME_LEAF_LAT, rtol=1e-12)


def test_shared_finish_matches_brute_force_with_counts_and_ties():
    """Random links, sizes with ties, and aggregated entries (``count`` flows of ``size / count``):
    every hop's finish equals sum over its link of count_i min(unit_i, unit) / cap, an aggregated
    entry the same as its members listed one by one."""
    rng = np.random.default_rng(3)
    n = 400
    key = rng.integers(0, 17, n)
    unit = rng.choice([1e6, 2e6, 5e6, 7.5e6], n) * rng.choice([1.0, 3.0], n)
    count = rng.choice([1.0, 2.0, 8.0], n)
    cap = rng.uniform(1e10, 5e10, 17)
    got = shared_finish_s(key, unit * count, unit, count, cap)
    want = np.array([(count[key == key[i]] * np.minimum(unit[key == key[i]], unit[i])).sum() / cap[key[i]]
                     for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    members = np.repeat(np.arange(n), count.astype(int))
    one_by_one = shared_finish_s(key[members], unit[members], unit[members], None, cap)
    np.testing.assert_allclose(one_by_one, got[members], rtol=1e-12)


def test_agrees_with_flow_model_on_an_oversubscribed_spine():
    """Six flows of random sizes through one 100 GB/s leaf-spine bundle (each from its own
    50 GB/s port): the analytical finishes lie within 10% of the max-min ones. The gap is the
    multi-link effect the per-link rule ignores: once the others have left, the largest
    flow is held by its 50 GB/s port, not by the spine's 100 GB/s (the bound: the last flow's
    remainder runs at half the spine rate)."""
    f = fat_tree(8, oversubscription=3.0, endpoints=12, tiers=2)
    ep = f.routing["endpoints"]
    worst = 0.0
    for seed in range(5):
        size = np.random.default_rng(seed).uniform(2e8, 2e9, 6)
        flows = Flows(ep[0:6], ep[6:12], size)
        a = AnalyticalNetwork(f).transfer(flows).flow_finish_s
        m = FlowNetwork(f).transfer(flows).flow_finish_s
        assert np.all(a <= m * (1 + 1e-9))  # here the rule only misses the port limit at the end
        worst = max(worst, float(np.max(np.abs(a / m - 1))))
    assert worst < 0.10
