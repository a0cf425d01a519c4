"""Tests of the two-tier Clos supernode family (CloudMatrix384 shape)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from oassim.topology.fabric import freeze
from oassim.topology.families import clos2
from oassim.topology.graph import accelerators_of, add_nodes, new_graph, nodes_of
from oassim.topology.parts import LinkClass, SwitchClass
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

UB_E = LinkClass("ub", 28e9, 1e-7, "copper")
UB_O = LinkClass("ub-lpo", 28e9, 2e-7, "optical", module="400G-LPO")
L1 = SwitchClass("ub-l1", radix=48, latency_s=1e-7)
L2 = SwitchClass("ub-l2", radix=48, latency_s=1e-7)
LINKS = {"l1": UB_E, "l2": UB_O}
SWITCHES = {"l1": L1, "l2": L2}
CM384 = dict(
    nodes=48, accelerators_per_node=8, l1_per_node=7, links_per_l1=2, l1_uplinks=16, l2_per_plane=16
)


def _spec(nodes=4, apn=2, nl1=2, lp=1, up=2, npp=2) -> clos2.Spec:
    return clos2.Spec(
        nodes=nodes, accelerators_per_node=apn, l1_per_node=nl1, links_per_l1=lp, l1_uplinks=up,
        l2_per_plane=npp,
    )


def _router(g: nx.Graph):
    fabric = freeze(g)
    structure = {k: v for k, v in fabric.routing.items() if k != "router"}
    return fabric, clos2.Clos2Router(fabric, **structure)


def _weighted_degree(g: nx.Graph, n: int) -> int:
    return sum(d["count"] for _, _, d in g.edges(int(n), data=True))


def _min_cut(g: nx.Graph) -> float:
    """Max-flow between super-source on ranks < A/2 and super-sink on the rest."""
    acc = accelerators_of(g)
    h = nx.Graph()
    h.add_edges_from((u, v, {"capacity": d["bandwidth_Bps"]}) for u, v, d in g.edges(data=True))
    first = (len(acc) + 1) // 2
    h.add_edges_from(("s", int(a)) for a in acc[:first])
    h.add_edges_from((int(a), "t") for a in acc[first:])
    return nx.minimum_cut_value(h, "s", "t")


def test_cloudmatrix384_counts_and_degrees():
    """CM384: 384 NPUs, 336 L1 chips, 112 L2 switches with 48 ports, 14 links per NPU."""
    g = clos2.build(clos2.Spec(**CM384), LINKS, SWITCHES)
    acc = nodes_of(g, kind="accelerator")
    l1, l2 = nodes_of(g, tier="scaleup-l1"), nodes_of(g, tier="scaleup-l2")
    assert (len(acc), len(l1), len(l2)) == (384, 336, 112)
    tiers = [d["tier"] for _, _, d in g.edges(data=True)]
    assert tiers.count("scaleup-l1") == 384 * 7 and tiers.count("scaleup-l2") == 336 * 16
    assert {_weighted_degree(g, a) for a in acc} == {14}
    assert {_weighted_degree(g, s) for s in l1} == {8 * 2 + 16}
    assert {_weighted_degree(g, s) for s in l2} == {48}
    media = {d["medium"] for _, _, d in g.edges(data=True) if d["tier"] == "scaleup-l2"}
    assert media == {"optical"}


def test_structure_attributes():
    """pod = server on NPUs and L1 chips; L1 chip i and its L2 plane share plane i."""
    g = clos2.build(_spec(nodes=3, apn=2, nl1=3, up=4, npp=2), LINKS, SWITCHES)
    acc = accelerators_of(g)
    assert [g.nodes[int(a)]["pod"] for a in acc] == [0, 0, 1, 1, 2, 2]
    assert [g.nodes[int(a)]["rail"] for a in acc] == list(range(6))
    for s in nodes_of(g, tier="scaleup-l1"):
        d = g.nodes[int(s)]
        for nb in g[int(s)]:
            nd = g.nodes[nb]
            if nd["kind"] == "accelerator":
                assert nd["pod"] == d["pod"]
            else:
                assert nd["plane"] == d["plane"] and g.edges[int(s), nb]["count"] == 2


@pytest.mark.parametrize(
    "kw",
    [
        dict(nodes=4, apn=2, nl1=2, lp=1, up=2, npp=2),  # non-blocking
        dict(nodes=4, apn=4, nl1=2, lp=1, up=2, npp=2),  # L1 oversubscribed 2:1
        dict(nodes=4, apn=2, nl1=3, lp=2, up=8, npp=2),  # uplinks exceed down-links
        dict(nodes=3, apn=2, nl1=2, lp=1, up=2, npp=1),  # odd servers, split server
        dict(nodes=5, apn=3, nl1=2, lp=1, up=4, npp=2),  # odd size, uneven split
        dict(nodes=3, apn=4, nl1=2, lp=1, up=1, npp=1),  # split server, thin uplink
        dict(nodes=2, apn=1, nl1=1, lp=1, up=1, npp=1),  # smallest
    ],
)
def test_bisection_equals_max_flow(kw):
    """Closed-form bisection equals the max-flow min cut between the rank halves."""
    spec = _spec(**kw)
    links = {"l1": UB_E, "l2": LinkClass("ub-o", 40e9, medium="optical")}
    g = clos2.build(spec, links, SWITCHES)
    assert clos2.bisection_Bps(spec, links) == pytest.approx(_min_cut(g), rel=1e-9)


def test_routes_minimal_valid_and_diameter():
    """All-pairs routes are valid, as short as BFS through switches, and reach the diameter."""
    spec = _spec(nodes=3, apn=3, nl1=2, lp=1, up=2, npp=2)
    fabric, r = _router(clos2.build(spec, LINKS, SWITCHES))
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    transit = ~fabric.kind_mask("accelerator")
    ref = np.concatenate([bfs_hops(fabric, int(s), transit)[acc] for s in acc])
    for salt in range(3):
        paths = r.route(src, dst, salt)
        assert_paths_valid(fabric, src, dst, paths)
        assert np.array_equal(paths.hops, ref)
    assert paths.hops.max() == clos2.diameter_hops(spec)
    same_server = fabric.node_pod[src] == fabric.node_pod[dst]
    assert set(paths.hops[same_server & (src != dst)]) == {2}


def test_ecmp_spreads_uplinks():
    """Over all cross-server flows (50 salts) no L1-L2 up-link carries more than 1.5x the mean."""
    spec = clos2.Spec(**{**CM384, "nodes": 8})
    fabric, r = _router(clos2.build(spec, LINKS, SWITCHES))
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    far = fabric.node_pod[src] != fabric.node_pod[dst]
    load = sum(
        np.bincount(r.route(src[far], dst[far], salt).links, minlength=fabric.n_links)
        for salt in range(50)
    )
    tier = fabric.link_tier_names.index("scaleup-l2")
    l1_ids = np.flatnonzero(fabric.node_tier == fabric.tier_names.index("scaleup-l1"))
    up = (fabric.link_tier == tier) & np.isin(fabric.link_src, l1_ids)
    assert up.sum() == 8 * 7 * 16
    assert load[up].min() > 0.5 * load[up].mean()
    assert load[up].max() < 1.5 * load[up].mean()


def test_spread_stripes_every_transfer_over_all_planes():
    """A transfer is striped in equal parts over every L1 plane of its server (valid paths, one
    per plane, fractions summing to 1), so one NPU-to-NPU transfer of S bytes alone takes
    S / (planes x link bandwidth) plus the path latency on the analytical model."""
    from oassim.network import Flows
    from oassim.network.analytical import AnalyticalNetwork

    spec = clos2.Spec(**{**CM384, "nodes": 4})
    fabric, r = _router(clos2.build(spec, LINKS, SWITCHES))
    acc = fabric.accel_node
    src, dst = acc[[0, 0, 3]], acc[[1, 9, 3]]  # same server, other server, self
    paths, owner, frac = r.spread(src, dst, salt=1)
    assert_paths_valid(fabric, src[owner], dst[owner], paths)
    assert np.bincount(owner, weights=frac, minlength=3) == pytest.approx([1, 1, 0])
    for k in (0, 1):
        first_hops = {int(fabric.link_dst[paths[i][0]]) for i in np.flatnonzero(owner == k)}
        assert len(first_hops) == spec.l1_per_node
    size = 1e9
    net = AnalyticalNetwork(fabric)
    assert type(fabric.router) is clos2.Clos2Router  # the model routes as the router under test
    res = net.transfer(Flows(src[:2], dst[:2], np.full(2, size)))
    # each plane's link (links_per_l1 = 2 bundled) carries S / planes; two flows share the source's links
    per_plane_bw = UB_E.bandwidth_Bps * spec.links_per_l1
    expect = 2 * size / spec.l1_per_node / per_plane_bw
    assert res.time_s == pytest.approx(expect, rel=0.02)


def test_deterministic_and_salt_spreads():
    """Same salt gives the same route; another salt moves most flows."""
    fabric, r = _router(clos2.build(_spec(nodes=4, apn=2, nl1=4, up=4, npp=4), LINKS, SWITCHES))
    rng = np.random.default_rng(3)
    src, dst = rng.choice(fabric.accel_node, 1000), rng.choice(fabric.accel_node, 1000)
    a, b, c = r.route(src, dst, 5), r.route(src, dst, 5), r.route(src, dst, 6)
    assert np.array_equal(a.links, b.links) and np.array_equal(a.ptr, b.ptr)
    same = [np.array_equal(a[i], c[i]) for i in range(len(src)) if src[i] != dst[i]]
    assert np.mean(same) < 0.3


def test_appends_to_existing_graph():
    """Building into a graph with nodes appends ids after them and routes still work."""
    g = new_graph("x", "mixed")
    add_nodes(g, 3, "switch", "other")
    g = clos2.build(_spec(), LINKS, SWITCHES, g=g)
    fabric, r = _router(g)
    assert fabric.accel_node.min() == 3
    src, dst = fabric.accel_node, fabric.accel_node[::-1]
    assert_paths_valid(fabric, src, dst, r.route(src, dst))


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(up=16, npp=5), r"l1_uplinks \(16\) is not a multiple of l2_per_plane \(5\)"),
        (dict(nodes=1), "nodes"),
        (dict(nl1=0), "l1_per_node"),
    ],
)
def test_spec_rejects_impossible(kw, match):
    """Impossible geometries raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        _spec(**kw)


def test_build_rejects_endpoints_and_missing_roles():
    """Endpoints are refused and a missing part names its role."""
    with pytest.raises(ValueError, match="endpoints"):
        clos2.build(_spec(), LINKS, SWITCHES, endpoints=np.arange(8))
    with pytest.raises(ValueError, match="'l2'"):
        clos2.build(_spec(), {"l1": UB_E}, SWITCHES)


def test_roles_needed_are_all_roles():
    """This family uses every declared role for any geometry."""
    spec = _spec()
    assert clos2.roles_needed(spec) == (clos2.LINK_ROLES, clos2.SWITCH_ROLES)


@pytest.mark.bench
def test_bench_route_100k_pairs_16k():
    """Print the time to route 100,000 pairs on a 16,384-NPU two-tier Clos."""
    import time

    spec = clos2.Spec(**{**CM384, "nodes": 2048})
    fabric, r = _router(clos2.build(spec, LINKS, SWITCHES))
    rng = np.random.default_rng(0)
    src, dst = rng.choice(fabric.accel_node, 100_000), rng.choice(fabric.accel_node, 100_000)
    t0 = time.perf_counter()
    paths = r.route(src, dst, 1)
    print(f"clos2 16k: 100k pairs routed in {time.perf_counter() - t0:.3f} s")
    assert len(paths) == 100_000 and paths.hops.max() == clos2.diameter_hops(spec)
