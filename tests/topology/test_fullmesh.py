"""Tests of the nD full-mesh family (UB-Mesh nD-FullMesh shape)."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from oassim.topology.fabric import freeze
from oassim.topology.families import fullmesh
from oassim.topology.graph import accelerators_of, add_nodes, new_graph
from oassim.topology.parts import LinkClass
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

BW = [50e9, 30e9, 20e9, 10e9]
LINKS = {f"dim{d}": LinkClass(f"ub-d{d}", BW[d], 1e-7, "copper") for d in range(4)}


def _build(dims, lpd=None, **kw) -> tuple[fullmesh.Spec, nx.Graph]:
    spec = fullmesh.Spec(dims=dims, links_per_dim=lpd or [1] * len(dims))
    return spec, fullmesh.build(spec, LINKS, {}, **kw)


def _router(g: nx.Graph):
    fabric = freeze(g)
    structure = {k: v for k, v in fabric.routing.items() if k != "router"}
    return fabric, fullmesh.FullMeshRouter(fabric, **structure)


def _min_cut(g: nx.Graph) -> float:
    """Max-flow between super-source on ranks < A/2 and super-sink on the rest."""
    acc = accelerators_of(g)
    h = nx.Graph()
    h.add_edges_from((u, v, {"capacity": d["bandwidth_Bps"]}) for u, v, d in g.edges(data=True))
    first = (len(acc) + 1) // 2
    h.add_edges_from(("s", int(a)) for a in acc[:first])
    h.add_edges_from((int(a), "t") for a in acc[first:])
    return nx.minimum_cut_value(h, "s", "t")


def test_ubmesh_pod_counts_and_degrees():
    """[8,8,4,4]: 1024 NPUs, N(k-1)/2 edges per dimension, degree sum (k-1)*links, pod = rack."""
    spec, g = _build([8, 8, 4, 4], [2, 2, 1, 1])
    acc = accelerators_of(g)
    assert len(acc) == 1024 and g.number_of_nodes() == 1024
    tiers = [d["tier"] for _, _, d in g.edges(data=True)]
    for d, k in enumerate(spec.dims):
        assert tiers.count(f"mesh-dim{d}") == 1024 * (k - 1) // 2
    deg = {sum(e["count"] for _, _, e in g.edges(int(a), data=True)) for a in acc}
    assert deg == {7 * 2 + 7 * 2 + 3 + 3}
    pods = np.array([g.nodes[int(a)]["pod"] for a in acc])
    assert np.array_equal(pods, np.arange(1024) // 64)


def test_edges_join_exactly_one_differing_coordinate():
    """Every edge joins ranks that differ in exactly the coordinate of its tier."""
    spec, g = _build([3, 2, 4])
    rank = {n: d["rank"] for n, d in g.nodes(data=True)}
    for u, v, e in g.edges(data=True):
        cu = np.unravel_index(rank[u], (4, 2, 3))[::-1]
        cv = np.unravel_index(rank[v], (4, 2, 3))[::-1]
        diff = [d for d in range(3) if cu[d] != cv[d]]
        assert diff == [int(e["tier"][-1])]
    assert g.number_of_edges() == 24 * (2 + 1 + 3) // 2


@pytest.mark.parametrize(
    "dims,lpd",
    [
        ([4], [1]), ([3], [2]), ([2, 3], [1, 2]), ([3, 3], [2, 1]), ([4, 2, 3], [1, 1, 2]),
        ([2, 2, 2, 2], [1, 2, 1, 3]), ([3, 4, 2], [1, 1, 1]), ([5, 3], [1, 1]),
    ],
)
def test_bisection_equals_max_flow(dims, lpd):
    """Closed-form bisection equals the max-flow min cut between the rank halves."""
    spec, g = _build(dims, lpd)
    assert fullmesh.bisection_Bps(spec, LINKS) == pytest.approx(_min_cut(g), rel=1e-9)


def test_bisection_even_last_dim_formula():
    """Even last dimension k: (N/k) * (k/2)^2 * links * B of that dimension only."""
    spec = fullmesh.Spec(dims=[8, 8, 4, 4], links_per_dim=[2, 2, 1, 1])
    assert fullmesh.bisection_Bps(spec, LINKS) == pytest.approx(256 * 4 * 1 * BW[3])


@pytest.mark.parametrize("dims", [[4], [3, 2], [2, 3, 2], [2, 2, 2, 3]])
def test_routes_minimal_valid_and_diameter(dims):
    """All-pairs routes are valid, equal BFS distance (Hamming) and reach len(dims) hops."""
    spec, g = _build(dims)
    fabric, r = _router(g)
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    paths = r.route(src, dst, 0)
    assert_paths_valid(fabric, src, dst, paths)
    ref = np.concatenate([bfs_hops(fabric, int(s))[acc] for s in acc])
    assert np.array_equal(paths.hops, ref)
    assert paths.hops.max() == fullmesh.diameter_hops(spec)


def test_dimension_order_lowest_first():
    """The first hop fixes the lowest differing coordinate."""
    spec, g = _build([3, 3, 3])
    fabric, r = _router(g)
    acc = fabric.accel_node
    p = r.route(acc[[0]], acc[[1 + 3 + 9]])  # (0,0,0) -> (1,1,1)
    tiers = [fabric.link_tier_names[t] for t in fabric.link_tier[p[0]]]
    assert tiers == ["mesh-dim0", "mesh-dim1", "mesh-dim2"]


def test_all_to_all_load_uniform_per_dimension():
    """Under all-to-all every directed link of a dimension carries the same number of flows."""
    spec, g = _build([3, 4, 2])
    fabric, r = _router(g)
    acc = fabric.accel_node
    src, dst = np.repeat(acc, len(acc)), np.tile(acc, len(acc))
    load = np.bincount(r.route(src, dst).links, minlength=fabric.n_links)
    for t in range(len(fabric.link_tier_names)):
        assert len(set(load[fabric.link_tier == t].tolist())) == 1


def test_appends_to_existing_graph():
    """Building into a graph with nodes appends ids after them and routes still work."""
    g = new_graph("x", "mixed")
    add_nodes(g, 2, "switch", "other")
    spec, g = _build([3, 2], g=g)
    fabric, r = _router(g)
    assert fabric.accel_node.min() == 2
    acc = fabric.accel_node
    src, dst = np.array(list(itertools.product(acc, acc))).T
    assert_paths_valid(fabric, src, dst, r.route(src, dst))


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(dims=[8, 1], links_per_dim=[1, 1]), "dims must be >= 2"),
        (dict(dims=[8, 8], links_per_dim=[1]), "links_per_dim has 1 entries but dims has 2"),
        (dict(dims=[2, 2, 2, 2, 2], links_per_dim=[1] * 5), "dims"),
        (dict(dims=[4], links_per_dim=[0]), "links_per_dim must be >= 1"),
    ],
)
def test_spec_rejects_impossible(kw, match):
    """Impossible geometries raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        fullmesh.Spec(**kw)


def test_build_rejects_endpoints_and_missing_roles():
    """Endpoints are refused; a missing per-dimension link names its role."""
    spec = fullmesh.Spec(dims=[2, 2, 2], links_per_dim=[1, 1, 1])
    with pytest.raises(ValueError, match="endpoints"):
        fullmesh.build(spec, LINKS, {}, endpoints=np.arange(8))
    with pytest.raises(ValueError, match="'dim2'"):
        fullmesh.build(spec, {"dim0": LINKS["dim0"], "dim1": LINKS["dim1"]}, {})
    with pytest.raises(ValueError, match="'dim2'"):
        fullmesh.bisection_Bps(spec, {"dim0": LINKS["dim0"], "dim1": LINKS["dim1"]})


def test_roles_needed_follow_dims():
    """A 2D mesh needs dim0 and dim1 only; every needed role is a declared one."""
    roles = fullmesh.roles_needed(fullmesh.Spec(dims=[8, 8], links_per_dim=[1, 1]))
    assert roles == (("dim0", "dim1"), ())
    assert set(roles[0]) <= set(fullmesh.LINK_ROLES)


@pytest.mark.bench
def test_bench_route_100k_pairs_16k():
    """Print the time to route 100,000 pairs on a 16,384-NPU 4D full mesh."""
    import time

    spec, g = _build([8, 8, 16, 16])
    fabric, r = _router(g)
    rng = np.random.default_rng(0)
    src, dst = rng.choice(fabric.accel_node, 100_000), rng.choice(fabric.accel_node, 100_000)
    t0 = time.perf_counter()
    paths = r.route(src, dst, 1)
    print(f"fullmesh 16k: 100k pairs routed in {time.perf_counter() - t0:.3f} s")
    assert len(paths) == 100_000 and paths.hops.max() == fullmesh.diameter_hops(spec)
