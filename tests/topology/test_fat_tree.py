"""Tests of the multi-tier folded-Clos (fat-tree) scale-out family."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from oassim.topology.fabric import freeze
from oassim.topology.families import fat_tree as ft
from oassim.topology.graph import add_nodes, new_graph, nodes_of
from oassim.topology.parts import LinkClass, SwitchClass
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

HOST = LinkClass("ndr", 50e9, 1e-7, "optical", rate_Gbps=400)
LS = LinkClass("ndr-ls", 50e9, 1e-7, "optical", rate_Gbps=400)
SC = LinkClass("ndr-sc", 50e9, 1e-7, "optical", rate_Gbps=400)
LINKS = {"host": HOST, "leaf_spine": LS, "spine_core": SC}


def _switches(k: int) -> dict[str, SwitchClass]:
    return {r: SwitchClass(f"sw-{r}", radix=k, latency_s=2e-7, port_rate_Gbps=400) for r in ft.SWITCH_ROLES}


def _build(k: int, links=LINKS, **spec):
    return ft.build(ft.Spec(**spec), links, _switches(k))


def _router(g: nx.Graph):
    fabric = freeze(g)
    return fabric, ft.FatTreeRouter(fabric, **{k: v for k, v in fabric.routing.items() if k != "router"})


def _wdeg(g: nx.Graph, n: int, tier: str | None = None) -> int:
    return sum(d["count"] for _, _, d in g.edges(int(n), data=True) if tier is None or d["tier"] == tier)


def _max_flow(g: nx.Graph, endpoints: np.ndarray) -> float:
    """Max-flow between a super-source on endpoints with index < E/2 and a super-sink on the rest."""
    h = nx.Graph()
    h.add_edges_from((u, v, {"capacity": d["bandwidth_Bps"]}) for u, v, d in g.edges(data=True))
    first = (len(endpoints) + 1) // 2
    h.add_edges_from(("s", int(a)) for a in endpoints[:first])
    h.add_edges_from((int(a), "t") for a in endpoints[first:])
    return nx.minimum_cut_value(h, "s", "t")


# DGX SuperPOD B200 reference architecture, docs/sources.md C1 [S54]: radix 64, 1:1.
@pytest.mark.parametrize(
    "gpus,leaf,spine,core",
    [(512, 16, 8, 0), (1024, 32, 16, 0), (2048, 64, 32, 0), (4096, 128, 128, 64), (8192, 256, 256, 128),
     (16384, 512, 512, 256)],
)
def test_dgx_superpod_b200_switch_counts(gpus, leaf, spine, core):
    """Radix 64 at 1:1 reproduces the B200 SuperPOD leaf-spine-core counts and one cable per GPU per tier [S54]."""
    g = _build(64, endpoints=gpus)
    assert [len(nodes_of(g, tier=t)) for t in ("leaf", "spine", "core")] == [leaf, spine, core]
    cables = {}
    for _, _, d in g.edges(data=True):
        cables[d["tier"]] = cables.get(d["tier"], 0) + d["count"]
    assert cables == {"host": gpus, "leaf-spine": gpus, **({"spine-core": gpus} if core else {})}


def test_degrees_and_bundles_3_tier():
    """3 tiers: full leaves use d down + u up ports, spines ds down + us up, cores all k ports."""
    k = 8
    g = _build(k, endpoints=128)  # d = u = ds = us = 4, 8 pods, 4 groups of 4 cores
    sz = ft.sizing(ft.Spec(endpoints=128), k)
    assert (sz.leaves, sz.pods, sz.spines, sz.cores, sz.cores_per_group) == (32, 8, 32, 16, 4)
    for n in nodes_of(g, tier="leaf"):
        assert _wdeg(g, n, "host") == 4 and _wdeg(g, n, "leaf-spine") == 4
    for n in nodes_of(g, tier="spine"):
        assert _wdeg(g, n, "leaf-spine") == 4 and _wdeg(g, n, "spine-core") == 4
    for n in nodes_of(g, tier="core"):
        assert _wdeg(g, n) == k
    for n in nodes_of(g, kind="accelerator"):
        assert _wdeg(g, n) == 1


def test_uneven_uplink_bundles_stay_within_radix():
    """2 tiers with u % S != 0: each leaf bundles floor/ceil(u/S) links per spine and no spine exceeds k."""
    k = 64
    g = _build(k, endpoints=5 * 32)  # L = 5, S = 3, u = 32: bundles 11/11/10 rotated
    leaves, spines = nodes_of(g, tier="leaf"), nodes_of(g, tier="spine")
    assert len(spines) == 3
    for n in leaves:
        counts = sorted(g.edges[int(n), int(s)]["count"] for s in spines)
        assert counts == [10, 11, 11]
    assert all(_wdeg(g, s) <= k for s in spines)
    assert sum(_wdeg(g, s) for s in spines) == 5 * 32


def test_oversubscribed_split_and_planes():
    """3:1 on radix 64 gives 48 down / 16 up; planes duplicate every switch with plane attributes."""
    g = _build(64, endpoints=96, oversubscription=3.0, planes=2)
    leaves = nodes_of(g, tier="leaf")
    assert len(leaves) == 4 and len(nodes_of(g, tier="spine")) == 2
    assert sorted({g.nodes[int(n)]["plane"] for n in leaves}) == [0, 1]
    for n in leaves:
        assert _wdeg(g, n, "host") == 48 and _wdeg(g, n, "leaf-spine") == 16
    assert all(_wdeg(g, a) == 2 for a in nodes_of(g, kind="accelerator"))
    d = g.nodes[int(leaves[0])]
    assert (d["kind"], d["spec"], d["radix"], d["port_rate_Gbps"]) == ("switch", "sw-leaf", 64, 400)


def test_tiers_auto_and_capacity_error():
    """tiers=None picks 2 up to k*d endpoints and 3 beyond; too many for the tier count names the maximum."""
    assert ft.sizing(ft.Spec(endpoints=2048), 64).tiers == 2
    assert ft.sizing(ft.Spec(endpoints=2049), 64).tiers == 3
    with pytest.raises(ValueError, match="2 tiers of radix-64 switches hold at most 2,048 endpoints; asked 2,049"):
        ft.sizing(ft.Spec(endpoints=2049, tiers=2), 64)
    with pytest.raises(ValueError, match="3 tiers of radix-64 switches hold at most 65,536 endpoints; asked 65,537"):
        ft.sizing(ft.Spec(endpoints=65537), 64)


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"endpoints": 8, "oversubscription": 0.5}, "greater than or equal to 1"),
        ({"endpoints": 8, "tiers": 2, "spine_oversubscription": 2.0}, "applies only to 3 tiers"),
        ({"endpoints": 8, "planes": 0}, "greater than 0"),
        ({"endpoints": 8, "tiers": 4}, "less than or equal to 3"),
        ({"endpoints": 8, "tiers": 2.0}, "valid integer"),
        ({"endpoints": True}, "valid integer"),
        ({"endpoints": 8, "oversubscription": float("inf")}, "finite number"),
    ],
)
def test_spec_validation(kw, msg):
    """Impossible spec values are rejected with a clear message."""
    with pytest.raises(ValueError, match=msg):
        ft.Spec(**kw)


def test_endpoint_count_errors():
    """A missing endpoint count or a mismatch with the endpoints array is an error."""
    with pytest.raises(ValueError, match="endpoint count is unknown"):
        _build(8)
    g = new_graph("x", "fat_tree")
    nics = add_nodes(g, 6, "nic", "nic")
    with pytest.raises(ValueError, match=r"spec.endpoints \(5\) != 6"):
        ft.build(ft.Spec(endpoints=5), LINKS, _switches(8), g=g, endpoints=nics)


def test_spine_radix_below_leaf_radix_rejected():
    """Every tier gets the leaf radix in the sizing rule, so a smaller spine radix is an error."""
    sws = {**_switches(8), "spine": SwitchClass("small", radix=4)}
    with pytest.raises(ValueError, match="spine radix 4 < leaf radix 8"):
        ft.build(ft.Spec(endpoints=16), LINKS, sws)


def test_attach_to_existing_endpoints_in_order():
    """Given NIC nodes, consecutive endpoints fill consecutive leaf ports and no accelerator is made."""
    g = new_graph("cluster", "composed")
    add_nodes(g, 3, "accelerator", "accelerator")
    nics = add_nodes(g, 20, "nic", "nic")[::-1]  # caller's (rail-optimised) order
    ft.build(ft.Spec(), LINKS, _switches(8), g=g, endpoints=nics)
    assert len(nodes_of(g, kind="accelerator")) == 3
    leaves = nodes_of(g, tier="leaf")
    assert leaves.min() > nics.max()
    for i, nic in enumerate(nics):
        assert [int(n) for n in g.neighbors(int(nic))] == [int(leaves[i // 4])]
    fabric, r = _router(g)
    rng = np.random.default_rng(1)
    s, d = rng.choice(nics, 300), rng.choice(nics, 300)
    assert_paths_valid(fabric, s, d, r.route(s, d, 0))


# (radix, spec) cases where the bundles are even, i.e. inside the closed form's domain.
EXACT = [
    (8, {"endpoints": 3}),
    (8, {"endpoints": 7}),
    (8, {"endpoints": 16}),
    (8, {"endpoints": 31}),
    (8, {"endpoints": 30, "oversubscription": 3.0}),
    (8, {"endpoints": 48, "oversubscription": 3.0, "planes": 2}),
    (8, {"endpoints": 64}),
    (8, {"endpoints": 41, "tiers": 3}),
    (8, {"endpoints": 128, "planes": 2}),
    (8, {"endpoints": 100, "oversubscription": 3.0, "spine_oversubscription": 3.0}),
    (8, {"endpoints": 59, "spine_oversubscription": 3.0}),
    (8, {"endpoints": 12, "tiers": 3}),
]


@pytest.mark.parametrize("k,spec", EXACT)
def test_bisection_equals_max_flow(k, spec):
    """Closed-form bisection equals the max-flow min cut between the endpoint halves (even bundles)."""
    g = _build(k, **spec)
    ep = g.graph["routing"]["endpoints"]
    assert ft.bisection_Bps(ft.Spec(**spec), LINKS, _switches(k)) == pytest.approx(_max_flow(g, ep), rel=1e-9)


def test_bisection_with_unequal_link_rates():
    """The closed form follows per-tier link bandwidths (thin spine-core, fat host links)."""
    links = {"host": LinkClass("h", 100e9), "leaf_spine": LinkClass("ls", 40e9), "spine_core": LinkClass("sc", 10e9)}
    for spec in ({"endpoints": 128}, {"endpoints": 90, "oversubscription": 3.0}, {"endpoints": 29}):
        g = _build(8, links=links, **spec)
        ep = g.graph["routing"]["endpoints"]
        assert ft.bisection_Bps(ft.Spec(**spec), links, radix=8) == pytest.approx(_max_flow(g, ep), rel=1e-9)


def test_bisection_upper_bound_outside_domain():
    """With uneven bundles (u % S != 0) the closed form is only an upper bound of the max-flow."""
    links = {"host": LinkClass("h", 25e9), "leaf_spine": LinkClass("ls", 50e9), "spine_core": SC}
    spec = ft.Spec(endpoints=64, oversubscription=2.0)  # radix 12: d = 8, u = 4, L = 8, S = 3
    assert not ft.sizing(spec, 12).even_bundles
    g = ft.build(spec, links, _switches(12))
    flow = _max_flow(g, g.graph["routing"]["endpoints"])
    assert ft.bisection_Bps(spec, links, radix=12) > flow * (1 + 1e-6)


def test_bisection_random_even_bundle_cases():
    """On random small fabrics the closed form equals max-flow with even bundles and bounds it otherwise."""
    rng = np.random.default_rng(2024)
    for _ in range(25):
        k = int(rng.choice([4, 6, 8, 10]))
        o, os_ = float(rng.choice([1.0, 2.0, 3.0])), float(rng.choice([1.0, 3.0]))
        bw = rng.choice([25e9, 50e9, 100e9], 3)
        links = {"host": LinkClass("h", bw[0]), "leaf_spine": LinkClass("l", bw[1]),
                 "spine_core": LinkClass("s", bw[2])}
        probe = ft.sizing(ft.Spec(endpoints=1, tiers=3, oversubscription=o, spine_oversubscription=os_), k)
        spec = ft.Spec(endpoints=int(rng.integers(2, min(probe.max_endpoints, 200) + 1)),
                       oversubscription=o, spine_oversubscription=os_)
        g = ft.build(spec, links, _switches(k))
        flow = _max_flow(g, g.graph["routing"]["endpoints"])
        closed = ft.bisection_Bps(spec, links, radix=k)
        if ft.sizing(spec, k).even_bundles:
            assert closed == pytest.approx(flow, rel=1e-9)
        else:
            assert closed >= flow * (1 - 1e-9)


def test_superpod_full_bisection():
    """The 16,384-GPU B200 SuperPOD at 1:1 has full bisection: E/2 host links [S54]."""
    spec = ft.Spec(endpoints=16384)
    assert ft.bisection_Bps(spec, LINKS, radix=64) == pytest.approx(8192 * HOST.bandwidth_Bps)
    assert ft.bisection_Bps(ft.Spec(endpoints=16384, oversubscription=3.0), LINKS, radix=64) < 8192 * 50e9


@pytest.mark.parametrize("k,spec", [(8, {"endpoints": 3}), (8, {"endpoints": 20, "planes": 2}),
                                    (8, {"endpoints": 41, "tiers": 3}), (8, {"endpoints": 12, "tiers": 3}),
                                    (8, {"endpoints": 60, "oversubscription": 3.0, "spine_oversubscription": 3.0})])
def test_routes_minimal_and_diameter(k, spec):
    """All-pairs routes are valid and shortest (BFS, endpoints not transit); max hops == diameter_hops."""
    g = _build(k, **spec)
    fabric, r = _router(g)
    ep = fabric.routing["endpoints"]
    s, d = np.repeat(ep, len(ep)), np.tile(ep, len(ep))
    paths = r.route(s, d, 3)
    assert_paths_valid(fabric, s, d, paths)
    transit = np.ones(fabric.n_nodes, dtype=bool)
    transit[ep] = False
    hops = paths.hops.reshape(len(ep), len(ep))
    for i, a in enumerate(ep):
        assert np.array_equal(hops[i], bfs_hops(fabric, int(a), transit)[ep])
    assert hops.max() == ft.diameter_hops(ft.Spec(**spec), radix=k)


def test_diameter_closed_form_values():
    """Diameter is 2 / 4 / 6 links for one leaf / two tiers / three tiers over several pods."""
    assert ft.diameter_hops(ft.Spec(endpoints=32), radix=64) == 2
    assert ft.diameter_hops(ft.Spec(endpoints=2048), radix=64) == 4
    assert ft.diameter_hops(ft.Spec(endpoints=16384), radix=64) == 6
    assert ft.diameter_hops(ft.Spec(endpoints=1), radix=64) == 0


def test_ecmp_spreads_uplinks_and_planes():
    """Over random pairs no leaf/spine uplink carries more than 2x the mean and planes share load."""
    g = _build(8, endpoints=128, planes=2)
    fabric, r = _router(g)
    ep = fabric.routing["endpoints"]
    rng = np.random.default_rng(7)
    s, d = rng.choice(ep, 40000), rng.choice(ep, 40000)
    paths = r.route(s, d, 11)
    load = np.bincount(paths.links, minlength=fabric.n_links)
    tiers = np.asarray(fabric.tier_names)[fabric.node_tier]
    for a, b in (("leaf", "spine"), ("spine", "core")):
        up = (tiers[fabric.link_src] == a) & (tiers[fabric.link_dst] == b)
        per_link = load[up] / fabric.link_count[up]
        assert per_link.max() < 2 * per_link.mean()
    moving = s != d
    plane = fabric.node_plane[fabric.link_dst[paths.links[paths.ptr[:-1][moving]]]]  # plane of first leaf
    share = np.bincount(plane, minlength=2) / moving.sum()
    assert np.all(np.abs(share - 0.5) < 0.03)


def test_routing_deterministic_and_salted():
    """The same (src, dst, salt) routes identically; another salt changes some spine choices."""
    g = _build(8, endpoints=64)
    fabric, r = _router(g)
    ep = fabric.routing["endpoints"]
    s, d = np.repeat(ep[:8], 8), np.tile(ep[-8:], 8)
    a, b, c = r.node_paths(s, d, 1), r.node_paths(s, d, 1), r.node_paths(s, d, 2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_router_rejects_non_endpoints():
    """Routing from a switch is an error: paths start and end at endpoints."""
    g = _build(8, endpoints=16)
    fabric, r = _router(g)
    leaf = nodes_of(g, tier="leaf")[0]
    with pytest.raises(ValueError, match="not an endpoint"):
        r.node_paths(np.array([leaf]), np.array([0]), 0)


@pytest.mark.parametrize("spec", [dict(endpoints=64), dict(endpoints=2048), dict(endpoints=3000),
                                  dict(endpoints=5000, oversubscription=3.0, planes=2),
                                  dict(endpoints=40_000, spine_oversubscription=2.0)])
def test_links_built_is_the_edge_count(spec):
    """links_built (the up-front size estimate) equals the edges the builder actually wires."""
    g = _build(64, **spec)
    assert ft.links_built(ft.Spec(**spec), _switches(64)) == g.number_of_edges()


def test_capacity_is_refused_before_any_graph_is_built(monkeypatch, capsys):
    """A million endpoints on 3 tiers of radix-64 switches is exit 2 naming the real limit, and no graph is built."""
    import oassim.topology.cluster as cluster
    from oassim.cli import main
    from oassim.topology.registry import FAMILIES

    def no_graph(*args, **kwargs):
        raise AssertionError("a graph was built")

    monkeypatch.setattr(cluster, "new_graph", no_graph)
    for name, (spec_model, _) in list(FAMILIES.items()):
        monkeypatch.setitem(FAMILIES, name, (spec_model, no_graph))
    assert main(["topo", "info", "dgx-h100-superpod", "-n", "1048576"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "scale_out.spec: fat_tree: 3 tiers of radix-64 switches hold at most 65,536 endpoints; " \
           "asked 1,048,576" in err
