"""Tests of the torus family, with and without OCS-stitched cubes (TPU v4 shape)."""

from __future__ import annotations

import collections

import networkx as nx
import numpy as np
import pytest

from oassim.topology.fabric import freeze
from oassim.topology.families import torus
from oassim.topology.graph import accelerators_of, add_nodes, new_graph, nodes_of
from oassim.topology.parts import LinkClass, SwitchClass
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

ICI = LinkClass("ici", 50e9, 1e-7, "copper")
OPT = LinkClass("ici-optical", 45e9, 5e-7, "optical", module="osfp-800g")
OCS = SwitchClass("palomar", radix=136, latency_s=1e-8)
LINKS = {"ici": ICI, "ocs": OPT}
SWITCHES = {"ocs": OCS}


def _build(dims, cube=None, lpn=1, **kw) -> tuple[torus.Spec, nx.Graph]:
    spec = torus.Spec(dims=dims, cube=cube, links_per_neighbor=lpn)
    return spec, torus.build(spec, LINKS, SWITCHES, **kw)


def _router(g: nx.Graph):
    fabric = freeze(g)
    structure = {k: v for k, v in fabric.routing.items() if k != "router"}
    return fabric, torus.TorusRouter(fabric, **structure)


def _weighted_degree(g: nx.Graph, n: int) -> int:
    return sum(d["count"] for _, _, d in g.edges(int(n), data=True))


def _min_cut(g: nx.Graph) -> float:
    """Max-flow between super-source on ranks < A/2 and super-sink on the rest."""
    acc = accelerators_of(g)
    h = nx.Graph()
    h.add_nodes_from(int(a) for a in acc)
    h.add_edges_from((u, v, {"capacity": d["bandwidth_Bps"]}) for u, v, d in g.edges(data=True))
    first = (len(acc) + 1) // 2
    h.add_edges_from(("s", int(a)) for a in acc[:first])
    h.add_edges_from((int(a), "t") for a in acc[first:])
    return nx.minimum_cut_value(h, "s", "t")


def test_plain_torus_counts_and_degrees():
    """4x4x4 torus: 3N edges, 6 neighbours per chip; a size-2 dimension: one edge per line."""
    _, g = _build([4, 4, 4], lpn=2)
    acc = accelerators_of(g)
    assert g.number_of_edges() == 3 * 64
    assert {_weighted_degree(g, a) for a in acc} == {12}
    assert {d["tier"] for _, _, d in g.edges(data=True)} == {"ici"}
    _, g = _build([2, 3])
    assert g.number_of_edges() == 3 * 1 + 2 * 3
    assert {g.degree(int(a)) for a in accelerators_of(g)} == {3}


def test_tpu_v4_pod_ocs_counts():
    """16^3 of 4^3 cubes: 48 OCS using 128 of 136 ports, 3,072 circuits, 9,216 copper links."""
    spec, g = _build([16, 16, 16], cube=[4, 4, 4])
    assert torus.ocs_ports_needed(spec) == {0: 128, 1: 128, 2: 128}
    ocs = nodes_of(g, kind="ocs")
    assert len(ocs) == 48 and all(g.degree(int(o)) == 0 for o in ocs)
    assert {g.nodes[int(o)]["radix"] for o in ocs} == {136}
    tiers = collections.Counter(d["tier"] for _, _, d in g.edges(data=True))
    assert tiers == {"ici": 64 * 144, "ocs-circuit": 3072}
    circuits = [d for _, _, d in g.edges(data=True) if d["tier"] == "ocs-circuit"]
    per_ocs = collections.Counter(d["ocs"] for d in circuits)
    assert set(per_ocs) == set(ocs.tolist()) and set(per_ocs.values()) == {64}  # 128 ports / 2
    assert {_weighted_degree(g, a) for a in accelerators_of(g)} == {6}


def test_optical_links_cross_cube_faces():
    """Copper stays inside a cube; circuits cross faces; one OCS per dimension and face spot."""
    spec, g = _build([8, 4], cube=[4, 2])
    pod = {n: d["pod"] for n, d in g.nodes(data=True) if d["kind"] == "accelerator"}
    rank = {n: d["rank"] for n, d in g.nodes(data=True) if d["kind"] == "accelerator"}
    for u, v, d in g.edges(data=True):
        if d["tier"] == "ici":
            assert pod[u] == pod[v] and d["medium"] == "copper"
        else:
            assert d["medium"] == "optical"
            dim = 0 if rank[u] // 8 == rank[v] // 8 else 1
            o = g.nodes[d["ocs"]]
            assert o["plane"] == dim
            other = rank[u] // 8 if dim == 0 else rank[u] % 8
            assert o["face_position"] == other % spec.cube[1 - dim]
            assert d["latency_s"] == pytest.approx(OPT.latency_s + OCS.latency_s)


def test_single_cube_wraps_through_ocs():
    """One 4x4x4 cube closes its rings through the OCS: 48 circuits, 2 ports on each of 48 OCS."""
    spec, g = _build([4, 4, 4], cube=[4, 4, 4])
    tiers = collections.Counter(d["tier"] for _, _, d in g.edges(data=True))
    assert tiers == {"ici": 144, "ocs-circuit": 48}
    assert {g.nodes[int(o)]["ports_used"] for o in nodes_of(g, kind="ocs")} == {2}


@pytest.mark.parametrize(
    "dims,cube,lpn",
    [
        ([4, 4], None, 1), ([3, 4], None, 2), ([4, 3], None, 1), ([2, 3], None, 1),
        ([3, 2], None, 1),
        ([5, 3], None, 1), ([4, 4, 2], None, 1), ([3, 3, 3], None, 1), ([2, 2, 2], None, 1),
        ([4, 4], [2, 2], 1), ([4, 6], [2, 3], 1), ([6, 4], [3, 4], 2), ([4, 4, 4], [2, 2, 2], 1),
        ([3, 5], [1, 5], 1), ([2, 4], [1, 2], 1), ([4, 2], [2, 2], 1), ([4, 8], [4, 2], 1),
    ],
)
def test_bisection_equals_max_flow(dims, cube, lpn):
    """Closed-form bisection equals the max-flow min cut between the rank halves."""
    spec, g = _build(dims, cube, lpn)
    assert torus.bisection_Bps(spec, LINKS) == pytest.approx(_min_cut(g), rel=1e-9)


def test_bisection_classic_formula():
    """Even last dimension > 2: 2 * (N / k) * links_per_neighbor * B."""
    spec = torus.Spec(dims=[8, 8, 16], links_per_neighbor=2)
    assert torus.bisection_Bps(spec, LINKS) == pytest.approx(2 * 64 * 2 * ICI.bandwidth_Bps)


@pytest.mark.parametrize(
    "dims,cube", [([4, 4], None), ([3, 5], None), ([2, 3, 4], None), ([4, 4], [2, 2])]
)
def test_routes_minimal_valid_and_diameter(dims, cube):
    """All-pairs routes are valid, equal BFS distance, and reach sum(floor(d/2)) hops."""
    spec, g = _build(dims, cube)
    fabric, r = _router(g)
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    ref = np.concatenate([bfs_hops(fabric, int(s))[acc] for s in acc])
    for salt in range(2):
        paths = r.route(src, dst, salt)
        assert_paths_valid(fabric, src, dst, paths)
        assert np.array_equal(paths.hops, ref)
    assert paths.hops.max() == torus.diameter_hops(spec)


def test_route_matches_node_paths():
    """The fast link-table route gives exactly the links of node_paths, for several salts."""
    from oassim.topology.routing import node_paths_to_paths

    fabric, r = _router(_build([6, 5, 4], cube=[3, 5, 2])[1])
    rng = np.random.default_rng(4)
    src, dst = rng.choice(fabric.accel_node, 3000), rng.choice(fabric.accel_node, 3000)
    for salt in range(3):
        fast = r.route(src, dst, salt)
        ref = node_paths_to_paths(fabric, r.node_paths(src, dst, salt))
        assert np.array_equal(fast.ptr, ref.ptr) and np.array_equal(fast.links, ref.links)


def test_tie_direction_spreads_by_hash():
    """On an even ring, half-way pairs go each way about half the time; other pairs never tie."""
    spec, g = _build([8, 3])
    fabric, r = _router(g)
    acc = fabric.accel_node
    src, dst = acc[np.arange(8)], acc[(np.arange(8) + 4) % 8]
    fwd = []
    for salt in range(400):
        p = r.route(src, dst, salt)
        assert np.all(p.hops == 4)
        fwd.append(fabric.link_dst[p.links[p.ptr[:-1]]] == acc[(np.arange(8) + 1) % 8])
    assert 0.4 < np.mean(fwd) < 0.6
    p = r.route(acc[[0]], acc[[3]], 0)
    assert [int(fabric.link_dst[x]) for x in p[0]] == [int(acc[1]), int(acc[2]), int(acc[3])]


def test_deterministic_per_salt():
    """The same (src, dst, salt) always gets the same route."""
    fabric, r = _router(_build([6, 4, 4])[1])
    rng = np.random.default_rng(0)
    src, dst = rng.choice(fabric.accel_node, 500), rng.choice(fabric.accel_node, 500)
    a, b = r.route(src, dst, 9), r.route(src, dst, 9)
    assert np.array_equal(a.links, b.links) and np.array_equal(a.ptr, b.ptr)


def test_appends_to_existing_graph():
    """Building into a graph with nodes appends ids after them and routes still work."""
    g = new_graph("x", "mixed")
    add_nodes(g, 4, "switch", "other")
    _, g = _build([4, 4], cube=[2, 2], g=g)
    fabric, r = _router(g)
    assert fabric.accel_node.min() == 4
    rng = np.random.default_rng(1)
    src, dst = rng.choice(fabric.accel_node, 200), rng.choice(fabric.accel_node, 200)
    assert_paths_valid(fabric, src, dst, r.route(src, dst, 2))
    ocs_ids = {d["ocs"] for _, _, d in g.edges(data=True) if "ocs" in d}
    assert ocs_ids <= set(nodes_of(g, kind="ocs").tolist())


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(dims=[4]), "dims"),
        (dict(dims=[4, 4, 4, 4]), "dims"),
        (dict(dims=[4, 1]), "dims must be >= 2"),
        (dict(dims=[4, 6], cube=[4, 4]), "must divide dims"),
        (dict(dims=[4, 4], cube=[4]), "cube has 1 entries"),
        (dict(dims=[4, 4], ocs_ports=64), "ocs_ports is set but cube is not"),
        (
            dict(dims=[16, 16, 16], cube=[4, 4, 4], ocs_ports=96),
            r"needs 128 ports .* ocs_ports is 96",
        ),
    ],
)
def test_spec_rejects_impossible(kw, match):
    """Impossible geometries raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        torus.Spec(**kw)


def test_ocs_ports_fit_tpu_v4():
    """A 4,096-chip pod fits 136-port OCS."""
    assert torus.Spec(dims=[16, 16, 16], cube=[4, 4, 4], ocs_ports=136).ocs_ports == 136


def test_build_rejects_endpoints_and_missing_roles():
    """Endpoints are refused; with cubes the OCS link and switch parts are required."""
    spec = torus.Spec(dims=[4, 4], cube=[2, 2])
    with pytest.raises(ValueError, match="endpoints"):
        torus.build(spec, LINKS, SWITCHES, endpoints=np.arange(16))
    with pytest.raises(ValueError, match="'ocs'"):
        torus.build(spec, {"ici": ICI}, SWITCHES)
    with pytest.raises(ValueError, match="'ocs'"):
        torus.build(spec, LINKS, {})
    g = torus.build(torus.Spec(dims=[4, 4]), {"ici": ICI}, {})  # no cube: ICI alone is enough
    assert g.number_of_edges() == 32 and len(nodes_of(g, kind="ocs")) == 0


def test_roles_needed_follow_cube():
    """Without cubes only the ICI link is needed; with cubes the OCS link and switch too."""
    assert torus.roles_needed(torus.Spec(dims=[4, 4])) == (("ici",), ())
    assert torus.roles_needed(torus.Spec(dims=[4, 4], cube=[2, 2])) == (("ici", "ocs"), ("ocs",))


@pytest.mark.bench
def test_bench_route_100k_pairs_16k():
    """Print the time to route 100,000 pairs on a 16x32x32 torus of 4^3 cubes."""
    import time

    spec, g = _build([16, 32, 32], cube=[4, 4, 4])
    fabric, r = _router(g)
    rng = np.random.default_rng(0)
    src, dst = rng.choice(fabric.accel_node, 100_000), rng.choice(fabric.accel_node, 100_000)
    t0 = time.perf_counter()
    paths = r.route(src, dst, 1)
    print(f"torus 16k: 100k pairs routed in {time.perf_counter() - t0:.3f} s")
    assert len(paths) == 100_000 and paths.hops.max() <= torus.diameter_hops(spec)
