"""Concurrent groups are costed together: shared oversubscribed links slow them, disjoint
ones do not (docs/architecture.md decision 6)."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import CollectiveEngine, CollectiveRequest, make_groups
from tests.collectives.conftest import B, engine_for, preset_fabric, two_switches

S = 2**26


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_groups_sharing_an_oversubscribed_trunk_take_longer(network):
    """Two 2-rank rings across one trunk of one port's bandwidth: bandwidth time doubles."""
    e = engine_for(two_switches(B), network)
    alone = e.run(CollectiveRequest("all_reduce", S, [[0, 2]], "ring")).time_s
    both = e.run(CollectiveRequest("all_reduce", S, [[0, 2], [1, 3]], "ring")).time_s
    assert both > 1.9 * alone - 1e-6  # latency terms do not double
    assert both == pytest.approx(2 * alone, rel=0.01)


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_disjoint_groups_do_not_slow_each_other(network):
    """Groups inside their own switches share no link: together == alone (1e-9)."""
    e = engine_for(two_switches(B), network)
    alone = e.run(CollectiveRequest("all_reduce", S, [[0, 1]], "ring")).time_s
    both = e.run(CollectiveRequest("all_reduce", S, [[0, 1], [2, 3]], "ring")).time_s
    assert both == pytest.approx(alone, rel=1e-9)


def test_a_full_rate_trunk_removes_the_contention():
    """With a trunk of two ports' bandwidth the shared groups run as fast as one alone."""
    e = engine_for(two_switches(2 * B))
    alone = e.run(CollectiveRequest("all_reduce", S, [[0, 2]], "ring")).time_s
    both = e.run(CollectiveRequest("all_reduce", S, [[0, 2], [1, 3]], "ring")).time_s
    assert both == pytest.approx(alone, rel=1e-9)


def test_rail_groups_on_a_rail_optimised_cluster_do_not_contend():
    """On DGX H100 (rail-optimised fat-tree, 32 nodes per leaf group), the 8 rail rings of a
    2-node job each use their own leaf: all at once == one alone."""
    f = preset_fabric("dgx-h100-superpod", 16)
    e = CollectiveEngine(f)
    rails = make_groups(e.caps, None, "rail")
    one = e.run(CollectiveRequest("all_reduce", S, rails[:1], "ring"))
    all_ = e.run(CollectiveRequest("all_reduce", S, rails, "ring"))
    assert all_.time_s == pytest.approx(one.time_s, rel=1e-9)
    assert all_.bottleneck_tier in ("nic", "host")
    assert np.isclose(all_.link_bytes.sum(), 8 * one.link_bytes.sum())
