"""Tests of the single-tier switched supernode family (NVL72 / DGX H100 shapes)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from oassim.topology.fabric import freeze
from oassim.topology.families import switched
from oassim.topology.graph import accelerators_of, add_nodes, new_graph, nodes_of
from oassim.topology.parts import LinkClass, SwitchClass
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

NVLINK = LinkClass("nvlink5", 50e9, 1e-7, "copper", rate_Gbps=400)
SW = SwitchClass(
    "nvswitch", radix=72, latency_s=2e-7, port_rate_Gbps=400, in_network_reduction=True
)


def _build(size: int, switches: int, links: int, **kw) -> nx.Graph:
    spec = switched.Spec(size=size, switches=switches, links_per_accelerator=links)
    return switched.build(spec, {"scaleup": NVLINK}, {"scaleup": SW}, **kw)


def _router(g: nx.Graph):
    fabric = freeze(g)
    structure = {k: v for k, v in fabric.routing.items() if k != "router"}
    return fabric, switched.SwitchedRouter(fabric, **structure)


def _weighted_degree(g: nx.Graph, n: int) -> int:
    return sum(d["count"] for _, _, d in g.edges(n, data=True))


def _min_cut(g: nx.Graph) -> float:
    """Max-flow between super-source on ranks < A/2 and super-sink on the rest."""
    acc = accelerators_of(g)
    h = nx.Graph()
    h.add_edges_from((u, v, {"capacity": d["bandwidth_Bps"]}) for u, v, d in g.edges(data=True))
    first = (len(acc) + 1) // 2
    h.add_edges_from(("s", int(a)) for a in acc[:first])
    h.add_edges_from((int(a), "t") for a in acc[first:])
    return nx.minimum_cut_value(h, "s", "t")


def test_nvl72_counts_and_degrees():
    """NVL72: 72 GPUs, 18 chips, one link from every GPU to every chip, 72 ports per chip."""
    g = _build(72, 18, 18)
    acc, sws = nodes_of(g, kind="accelerator"), nodes_of(g, kind="switch")
    assert len(acc) == 72 and len(sws) == 18
    assert g.number_of_edges() == 72 * 18
    assert all(d["count"] == 1 and d["tier"] == "scaleup" for _, _, d in g.edges(data=True))
    assert all(_weighted_degree(g, s) == 72 for s in sws)
    assert all(_weighted_degree(g, a) == 18 for a in acc)
    d = g.nodes[int(sws[0])]
    assert (d["tier"], d["radix"], d["spec"], d["domain"]) == ("scaleup", 72, "nvswitch", 0)
    assert d["in_network_reduction"] is True


def test_dgx_h100_bundles_5_5_4_4():
    """DGX H100: 18 links over 4 chips bundle as 5, 5, 4, 4 per GPU."""
    g = _build(8, 4, 18)
    acc, sws = nodes_of(g, kind="accelerator"), nodes_of(g, kind="switch")
    for a in acc:
        assert [g.edges[int(a), int(s)]["count"] for s in sws] == [5, 5, 4, 4]
        assert _weighted_degree(g, a) == 18
    assert [_weighted_degree(g, s) for s in sws] == [40, 40, 32, 32]
    assert g.edges[int(acc[0]), int(sws[0])]["bandwidth_Bps"] == pytest.approx(5 * 50e9)


def test_accelerator_attributes():
    """Accelerators carry domain 0, rail = local index, and the accel extras."""
    g = _build(8, 4, 8, accel={"spec": "h100", "ports": 18})
    acc = accelerators_of(g)
    assert [g.nodes[int(a)]["rail"] for a in acc] == list(range(8))
    assert all(g.nodes[int(a)]["domain"] == 0 and g.nodes[int(a)]["spec"] == "h100" for a in acc)


@pytest.mark.parametrize(
    "size,switches,links", [(8, 4, 18), (72, 18, 18), (7, 3, 5), (5, 2, 2), (6, 1, 3)]
)
def test_bisection_equals_max_flow(size, switches, links):
    """Closed-form bisection equals the max-flow min cut between the rank halves."""
    spec = switched.Spec(size=size, switches=switches, links_per_accelerator=links)
    g = switched.build(spec, {"scaleup": NVLINK}, {"scaleup": SW})
    assert switched.bisection_Bps(spec, {"scaleup": NVLINK}) == pytest.approx(_min_cut(g), rel=1e-9)


def test_routes_minimal_valid_and_diameter():
    """All-pairs routes are valid, 2 hops (the BFS distance through switches) and match diameter."""
    g = _build(6, 3, 4)
    fabric, r = _router(g)
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    paths = r.route(src, dst, 0)
    assert_paths_valid(fabric, src, dst, paths)
    transit = ~fabric.kind_mask("accelerator")
    ref = np.concatenate([bfs_hops(fabric, int(s), transit)[acc] for s in acc])
    assert np.array_equal(paths.hops, ref)
    spec = switched.Spec(size=6, switches=3, links_per_accelerator=4)
    assert paths.hops.max() == switched.diameter_hops(spec)


def test_ecmp_follows_link_counts():
    """Switch choice is weighted by the source's links: per-link load is even on 5,5,4,4 bundles."""
    g = _build(8, 4, 18)
    fabric, r = _router(g)
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    keep = src != dst
    # One flow per (pair, salt): a flow hash fixes the route, so spread shows across flows.
    routes = [r.route(src[keep], dst[keep], salt) for salt in range(300)]
    first = np.concatenate([p.links[p.ptr[:-1]] for p in routes])
    up = np.isin(fabric.link_src, acc)
    per_link = np.bincount(first, minlength=fabric.n_links)[up] / fabric.link_count[up]
    assert np.bincount(first, minlength=fabric.n_links)[~up].sum() == 0
    assert per_link.max() < 1.2 * per_link.mean()
    assert per_link.min() > 0.8 * per_link.mean()
    # Shares per chip follow 5,5,4,4 / 18 (uniform choice would give 0.25 each).
    per_chip = np.bincount(fabric.link_dst[first], minlength=fabric.n_nodes)
    share = per_chip[nodes_of(g, kind="switch")] / len(first)
    assert np.allclose(share, np.array([5, 5, 4, 4]) / 18, atol=0.01)


def test_deterministic_and_salt_spreads():
    """Same salt gives the same route; another salt moves a good share of flows."""
    g = _build(72, 18, 18)
    fabric, r = _router(g)
    rng = np.random.default_rng(2)
    src, dst = rng.choice(fabric.accel_node, 2000), rng.choice(fabric.accel_node, 2000)
    a, b, c = r.route(src, dst, 7), r.route(src, dst, 7), r.route(src, dst, 8)
    assert np.array_equal(a.links, b.links)
    same = [np.array_equal(a[i], c[i]) for i in range(len(src)) if src[i] != dst[i]]
    assert np.mean(same) < 0.2


def test_self_pairs_are_empty():
    """A pair with src == dst has an empty path."""
    fabric, r = _router(_build(4, 2, 2))
    p = r.route(fabric.accel_node, fabric.accel_node)
    assert np.all(p.hops == 0)


def test_appends_to_existing_graph():
    """Building into a graph with nodes appends ids after them and routes still work."""
    g = new_graph("x", "mixed")
    add_nodes(g, 5, "switch", "other")
    g = _build(4, 2, 2, g=g)
    assert min(nodes_of(g, kind="accelerator")) == 5
    fabric, r = _router(g)
    src, dst = fabric.accel_node, fabric.accel_node[::-1]
    assert_paths_valid(fabric, src, dst, r.route(src, dst))


def test_router_rejects_non_accelerators():
    """Routing from a switch node is an error, not a silent bad path."""
    fabric, r = _router(_build(4, 2, 2))
    with pytest.raises(ValueError, match="accelerators"):
        r.route(np.array([4]), np.array([0]))


@pytest.mark.parametrize(
    "kw,match",
    [
        (
            {"size": 8, "switches": 8, "links_per_accelerator": 4},
            r"links_per_accelerator \(4\) < switches \(8\)",
        ),
        ({"size": 1, "switches": 1, "links_per_accelerator": 1}, "size"),
        ({"size": 8, "switches": 0, "links_per_accelerator": 4}, "switches"),
    ],
)
def test_spec_rejects_impossible(kw, match):
    """Impossible geometries raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        switched.Spec(**kw)


def test_build_rejects_endpoints_and_missing_roles():
    """Endpoints are refused and a missing part names its role."""
    spec = switched.Spec(size=4, switches=2, links_per_accelerator=2)
    with pytest.raises(ValueError, match="endpoints"):
        switched.build(spec, {"scaleup": NVLINK}, {"scaleup": SW}, endpoints=np.arange(4))
    with pytest.raises(ValueError, match="scaleup"):
        switched.build(spec, {}, {"scaleup": SW})


def test_roles_needed_are_all_roles():
    """This family uses every declared role for any geometry."""
    spec = switched.Spec(size=4, switches=2, links_per_accelerator=2)
    assert switched.roles_needed(spec) == (switched.LINK_ROLES, switched.SWITCH_ROLES)


@pytest.mark.bench
def test_bench_route_100k_pairs_16k():
    """Print the time to route 100,000 pairs on a 16,384-GPU single-tier domain."""
    import time

    spec = switched.Spec(size=16384, switches=18, links_per_accelerator=18)
    fabric, r = _router(switched.build(spec, {"scaleup": NVLINK}, {"scaleup": SW}))
    rng = np.random.default_rng(0)
    src, dst = rng.choice(fabric.accel_node, 100_000), rng.choice(fabric.accel_node, 100_000)
    t0 = time.perf_counter()
    paths = r.route(src, dst, 1)
    print(f"switched 16k: 100k pairs routed in {time.perf_counter() - t0:.3f} s")
    assert len(paths) == 100_000 and paths.hops.max() == switched.diameter_hops(spec)
