"""Scale-out routing modes: adaptive routing costs equal-cost link groups as one link and
shares their load by capacity; the closed-form ECMP excess behaves as a maximum should."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from oassim.network import make_network
from oassim.network.base import Flows
from oassim.network.routing_modes import ecmp_excess, link_groups, scaleout_routing
from oassim.topology.cluster import build_fabric


@pytest.fixture(scope="module")
def fabrics(tmp_path_factory):
    """The dgx-h100-superpod preset at 256 GPUs, once per routing mode."""
    out = {}
    d = tmp_path_factory.mktemp("routing")
    from oassim.presets import argument_file

    spec = yaml.safe_load(open(argument_file("topologies", "dgx-h100-superpod")))
    for mode in ("ecmp", "adaptive"):
        spec["scale_out"]["routing"] = mode
        p = d / f"h100-{mode}.yaml"
        p.write_text(yaml.safe_dump(spec))
        out[mode] = build_fabric(str(p), 256)
    return out


def _cross_leaf_flows(f, k=200, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, k)
    dst = (src + 8 * rng.integers(1, 31, k)) % 256  # other nodes, same rail: another leaf or same
    return Flows(f.accel_node[src], f.accel_node[dst], rng.uniform(1e6, 1e8, k))


def test_mode_is_read_from_the_cluster_file(fabrics):
    """scale_out.routing reaches the network models (the default is ecmp)."""
    assert scaleout_routing(fabrics["adaptive"]) == "adaptive"
    assert scaleout_routing(fabrics["ecmp"]) == "ecmp"
    assert make_network("flow", fabrics["adaptive"]).routing == "adaptive"


@pytest.mark.parametrize("net", ["analytical", "flow"])
def test_adaptive_spreads_a_group_by_capacity(fabrics, net):
    """Adaptive: every link of an equal-cost group carries the same load per unit capacity."""
    f = fabrics["adaptive"]
    g = link_groups(f)
    res = make_network(net, f).transfer(_cross_leaf_flows(f))
    inside = g.group_of_link >= 0
    per_cap = res.link_bytes[inside] / f.capacity_Bps[inside]
    grp = g.group_of_link[inside]
    for k in np.unique(grp[per_cap > 0]):
        v = per_cap[grp == k]
        assert np.allclose(v, v[0], rtol=1e-9)


@pytest.mark.parametrize("net", ["analytical", "flow"])
def test_bytes_per_tier_do_not_depend_on_routing(fabrics, net):
    """Routing moves bytes between equal-cost links, never adds or drops any: per link tier the
    bytes carried are the same under ecmp and adaptive."""
    tiers = {}
    for mode, f in fabrics.items():
        res = make_network(net, f).transfer(_cross_leaf_flows(f))
        tiers[mode] = np.bincount(f.link_tier, weights=res.link_bytes, minlength=len(f.link_tier_names))
    assert np.allclose(tiers["ecmp"], tiers["adaptive"], rtol=1e-9)


def test_adaptive_no_slower_than_ecmp_on_many_flows(fabrics):
    """Spreading evenly can only lower the busiest uplink, so a phase of many flows finishes no
    later than with hashing (analytical model)."""
    t = {m: make_network("analytical", f).transfer(_cross_leaf_flows(f, k=2000, seed=1)).time_s
         for m, f in fabrics.items()}
    assert t["adaptive"] <= t["ecmp"] * (1 + 1e-9)


def test_flow_and_analytical_agree_without_sharing(fabrics):
    """One flow alone: both models give the same time under adaptive routing (within 1%)."""
    f = fabrics["adaptive"]
    fl = Flows(f.accel_node[[0]], f.accel_node[[8 * 20]], [1e8])
    ta = make_network("analytical", f).transfer(fl).time_s
    tf = make_network("flow", f).transfer(fl).time_s
    assert tf == pytest.approx(ta, rel=0.01)


def test_ecmp_excess_is_a_maximum_over_the_mean():
    """The excess is >= 1, falls as flows per link grow, and rises with the number of links."""
    lam = np.array([0.1, 1.0, 10.0, 100.0, 1e4])
    e = ecmp_excess(lam, 512)
    assert np.all(e >= 1) and np.all(np.diff(e) < 0)
    assert ecmp_excess(np.array([10.0]), 4096)[0] > ecmp_excess(np.array([10.0]), 16)[0]
    assert ecmp_excess(np.array([1e6]), 512)[0] == pytest.approx(1.0, abs=0.01)


def test_flow_counts_are_checked():
    """A count below 1 or of the wrong length is refused."""
    with pytest.raises(ValueError):
        Flows([0], [1], [1.0], count=[0.5])
    with pytest.raises(ValueError):
        Flows([0, 1], [1, 0], [1.0, 1.0], count=[2.0])
