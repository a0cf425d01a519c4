"""Degraded fabrics re-costed by the network model: bounded by the structural share, exact where it binds."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.experiments.reliability import cluster_counts
from oassim.reliability.recost import degraded_fabric, recost_slowdown


def test_only_the_failed_elements_tier_loses_bandwidth(counts_cache):
    """One NVL72 NVSwitch chip down: only its rack's scale-up links change, each by 17/18."""
    _, _, fab = cluster_counts("gb200-nvl72", 144, counts_cache)
    deg = degraded_fabric(fab, "scaleup_switch", "scaleup")
    changed = np.flatnonzero(deg.link_bw != fab.link_bw)
    assert {fab.link_tier_names[t] for t in fab.link_tier[changed]} == {"scaleup"}
    assert np.allclose(deg.link_bw[changed] / fab.link_bw[changed], 17 / 18)
    assert len(np.unique(fab.node_domain[fab.link_src[changed]])) == 1
    assert (deg.link_bw <= fab.link_bw).all()


def test_ring_on_a_degraded_nvl72_rack_is_at_most_the_structural_share(counts_cache):
    """A ring all-reduce that the scale-up links bind slows by > 0 and <= 1/17 (+1% for latency terms)."""
    _, _, fab = cluster_counts("gb200-nvl72", 144, counts_cache)
    s = recost_slowdown(fab, "scaleup_switch", "scaleup", algorithm="ring")
    assert 0 < s <= (1 / 17) * 1.01


def test_full_mesh_link_and_non_blocking_spine(counts_cache):
    """UB-Mesh: one of 7 direct links lost slows the rack all-reduce by at most 1/6; a DGX spine with
    headroom costs the rail all-reduce nothing."""
    _, _, fab = cluster_counts("ub-mesh", 1024, counts_cache)
    s = recost_slowdown(fab, "copper_link", "mesh-dim0")
    assert 0 < s <= (1 / 6) * 1.01
    _, _, fab = cluster_counts("dgx-h100-superpod", 1024, counts_cache)
    assert recost_slowdown(fab, "switch", "spine") == pytest.approx(0.0, abs=1e-9)
    assert recost_slowdown(fab, "switch", "no-such-tier") is None


@pytest.mark.parametrize("ref, n, comp, tier, algo", [("gb200-nvl72", 144, "scaleup_switch", "scaleup", "ring"),
                                                      ("ub-mesh", 1024, "copper_link", "mesh-dim0", "auto"),
                                                      ("tpu-v5p-pod", 1024, "switch", "spine", "auto")])
def test_shared_topology_caches_change_no_result(counts_cache, ref, n, comp, tier, algo):
    """The degraded fabric reuses the intact one's routes: its all-reduce time equals that of a
    fabric with the same bandwidths built without the shared caches (exactly), and it is slower
    than the intact one where the element binds (the NVL72 ring)."""
    import dataclasses

    from oassim.reliability.recost import _allreduce
    from oassim.topology.fabric import Fabric

    _, _, fab = cluster_counts(ref, n, counts_cache)
    deg = degraded_fabric(fab, comp, tier)
    fresh = dataclasses.replace(fab, link_bw=deg.link_bw.copy())
    assert all(name not in fresh.__dict__ for name in Fabric.TOPOLOGY_CACHES)
    groups = "rail" if tier == "spine" else "domain"
    t_deg, a_deg = _allreduce(deg, groups, algo)
    t_fresh, a_fresh = _allreduce(fresh, groups, algo)
    assert a_deg == a_fresh and t_deg == t_fresh
    assert deg.router is fab.router  # shared: topology only
    assert deg.capacity_Bps is not fab.capacity_Bps  # not shared: it follows the bandwidths
    if algo == "ring":
        assert t_deg > _allreduce(fab, groups, algo)[0]
