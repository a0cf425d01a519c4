"""Tests of the dragonfly scale-out family (Kim et al., ISCA 2008)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from oassim.topology.fabric import freeze
from oassim.topology.families import dragonfly as df
from oassim.topology.graph import add_nodes, new_graph, nodes_of
from oassim.topology.parts import LinkClass, SwitchClass
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

LINKS = {r: LinkClass(f"l-{r}", 50e9, 1e-7, "optical", rate_Gbps=400) for r in df.LINK_ROLES}
SWITCHES = {"router": SwitchClass("rtr", radix=64, latency_s=1e-7, port_rate_Gbps=400)}


def _spec(a: int, p: int, h: int, g: int, **kw) -> df.Spec:
    return df.Spec(routers_per_group=a, terminals_per_router=p, global_links_per_router=h, groups=g, **kw)


def _router(g: nx.Graph):
    fabric = freeze(g)
    return fabric, df.DragonflyRouter(fabric, **{k: v for k, v in fabric.routing.items() if k != "router"})


def _wdeg(g: nx.Graph, n: int, tier: str | None = None) -> int:
    return sum(d["count"] for _, _, d in g.edges(int(n), data=True) if tier is None or d["tier"] == tier)


def _max_flow(g: nx.Graph) -> float:
    """Max-flow between a super-source on endpoints with index < E/2 and a super-sink on the rest."""
    ep = g.graph["routing"]["endpoints"]
    h = nx.Graph()
    h.add_edges_from((u, v, {"capacity": d["bandwidth_Bps"]}) for u, v, d in g.edges(data=True))
    first = (len(ep) + 1) // 2
    h.add_edges_from(("s", int(a)) for a in ep[:first])
    h.add_edges_from((int(a), "t") for a in ep[first:])
    return nx.minimum_cut_value(h, "s", "t")


def _one_global_hop_dist(g: nx.Graph, a: int) -> np.ndarray:
    """Endpoint-to-endpoint hops over paths with at most one global link (networkx, per group pair)."""
    r = g.graph["routing"]
    ep, rte, routers = r["endpoints"], r["router_of_endpoint"], r["routers"]
    groups = len(routers) // a
    local = nx.Graph((u, v) for u, v, d in g.edges(data=True) if d["tier"] == "local")
    local.add_nodes_from(int(x) for x in routers)
    dist = np.zeros((len(ep), len(ep)), dtype=np.int64)
    for gs in range(groups):
        for gd in range(groups):
            sub = local.subgraph([int(x) for x in routers[gs * a:(gs + 1) * a]] +
                                 [int(x) for x in routers[gd * a:(gd + 1) * a]]).copy()
            sub.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["tier"] == "global" and
                               {g.nodes[u]["pod"], g.nodes[v]["pod"]} == {gs, gd} and gs != gd)
            lengths = dict(nx.all_pairs_shortest_path_length(sub))
            for i in np.flatnonzero(rte // a == gs):
                for j in np.flatnonzero(rte // a == gd):
                    dist[i, j] = 0 if i == j else 2 + lengths[int(routers[rte[i]])][int(routers[rte[j]])]
    return dist


def test_canonical_counts_degrees_and_attributes():
    """a=4, p=2, h=2, g=9: 72 endpoints, 36 routers of degree p+a-1+h, one global link per group pair."""
    g = df.build(_spec(4, 2, 2, 9), LINKS, SWITCHES)
    routers, acc = nodes_of(g, tier="router"), nodes_of(g, kind="accelerator")
    assert len(routers) == 36 and len(acc) == 72
    tiers = {}
    for _, _, d in g.edges(data=True):
        tiers[d["tier"]] = tiers.get(d["tier"], 0) + d["count"]
    assert tiers == {"host": 72, "local": 9 * 6, "global": 36}
    for n in routers:
        assert (_wdeg(g, n, "host"), _wdeg(g, n, "local"), _wdeg(g, n, "global")) == (2, 3, 2)
    assert all(_wdeg(g, n) == 1 for n in acc)
    d = g.nodes[int(routers[5])]
    assert (d["kind"], d["tier"], d["pod"], d["spec"], d["radix"]) == ("switch", "router", 1, "rtr", 64)
    assert [g.nodes[int(n)]["pod"] for n in acc[:9]] == [0] * 8 + [1]


def test_consecutive_arrangement_matches_kim():
    """With g = a*h + 1, router r of group i reaches groups i + r*h + 1 .. i + r*h + h (one link each)."""
    spec = _spec(4, 2, 2, 9)
    g = df.build(spec, LINKS, SWITCHES)
    routers = g.graph["routing"]["routers"]
    for gi in range(9):
        for r in range(4):
            node = int(routers[gi * 4 + r])
            peers = sorted(g.nodes[v]["pod"] for v in g.neighbors(node) if g.edges[node, v]["tier"] == "global")
            assert peers == sorted((gi + r * 2 + k) % 9 for k in (1, 2))


@pytest.mark.parametrize("a,h,groups,unused", [(4, 2, 4, 0), (5, 3, 7, 1), (3, 3, 7, 1), (2, 2, 4, 0),
                                               (4, 2, 2, 0), (5, 3, 6, 0), (3, 2, 6, 0)])
def test_every_pair_floor_or_ceil_links(a, h, groups, unused):
    """Each group pair has floor/ceil(a*h/(g-1)) global links; a port stays unused only for odd R and odd g."""
    spec = _spec(a, 1, h, groups)
    g = df.build(spec, LINKS, SWITCHES)
    per_pair = np.zeros((groups, groups), dtype=np.int64)
    for u, v, d in g.edges(data=True):
        if d["tier"] == "global":
            gu, gv = g.nodes[u]["pod"], g.nodes[v]["pod"]
            per_pair[gu, gv] += d["count"]
            per_pair[gv, gu] += d["count"]
    off = per_pair[~np.eye(groups, dtype=bool)]
    lo = a * h // (groups - 1)
    assert off.min() >= lo and off.max() <= lo + (1 if a * h % (groups - 1) else 0)
    assert np.all(per_pair.sum(axis=1) == a * h - unused)
    used = [_wdeg(g, n, "global") for n in nodes_of(g, tier="router")]
    assert max(used) <= h and sum(used) == groups * (a * h - unused)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(routers_per_group=2, terminals_per_router=1, global_links_per_router=1, groups=4),
         "some pairs of groups"),
        (dict(routers_per_group=2, terminals_per_router=1, global_links_per_router=1, groups=1),
         "greater than or equal to 2"),
        (dict(routers_per_group=2, terminals_per_router=2, global_links_per_router=1, groups=3, endpoints=13), r"= 12"),
        (dict(routers_per_group=2, terminals_per_router=2, global_links_per_router=1, groups=3,
              global_arrangement="absolute"), "consecutive"),
    ],
)
def test_spec_validation(kw, msg):
    """Impossible dragonfly specs are rejected with a clear message."""
    with pytest.raises(ValueError, match=msg):
        df.Spec(**kw)


def test_router_radix_must_hold_all_ports():
    """A router radix below p + (a-1) + h is an error naming the port budget."""
    with pytest.raises(ValueError, match="radix 6 < terminals"):
        df.build(_spec(4, 2, 2, 9), LINKS, {"router": SwitchClass("small", radix=6)})


# balanced shapes (g even, (g-1) | a*h): the closed form applies
BALANCED = [(3, 2, 1, 4), (2, 1, 3, 4), (4, 2, 3, 4), (5, 2, 3, 6), (4, 2, 2, 2), (3, 2, 3, 10), (8, 4, 4, 2)]


@pytest.mark.parametrize("a,p,h,groups", BALANCED)
def test_bisection_closed_form_equals_max_flow(a, p, h, groups):
    """In the balanced domain min(E/2*b_host, (g/2)^2*m*b_global) equals the max-flow on the built graph
    (and the closed form is certified without a max-flow whenever a >= 2h with equal rates)."""
    thin_global = {"host": LinkClass("h", 100e9), "local": LinkClass("l", 50e9), "global": LinkClass("g", 25e9)}
    for links in (LINKS, thin_global):
        spec = _spec(a, p, h, groups)
        m = a * h // (groups - 1)
        formula = min(a * p * groups / 2 * links["host"].bandwidth_Bps,
                      (groups // 2) ** 2 * m * links["global"].bandwidth_Bps)
        flow = _max_flow(df.build(spec, links, SWITCHES))
        assert df.bisection_Bps(spec, links) == pytest.approx(flow, rel=1e-9)
        assert formula == pytest.approx(flow, rel=1e-9)
        if a >= 2 * h and links is LINKS:
            assert df._closed_form(spec, links) == formula


@pytest.mark.parametrize("a,p,h,groups,kw,local_Bps",
                         [(4, 2, 2, 9, {}, 50e9), (5, 2, 3, 7, {}, 50e9), (4, 2, 2, 5, {"endpoints": 13}, 50e9),
                          (5, 2, 3, 6, {}, 10e9), (3, 2, 3, 10, {}, 10e9), (1, 2, 2, 3, {}, 50e9)])
def test_bisection_outside_domain_is_exact_max_flow(a, p, h, groups, kw, local_Bps):
    """Odd g, partial fill or thin local links: no closed form; bisection_Bps equals the built graph's max-flow."""
    links = {**LINKS, "local": LinkClass("thin", local_Bps)}
    spec = _spec(a, p, h, groups, **kw)
    assert df._closed_form(spec, links) is None
    assert df.bisection_Bps(spec, links) == pytest.approx(_max_flow(df.build(spec, links, SWITCHES)), rel=1e-9)


def test_bisection_too_large_outside_domain_raises(monkeypatch):
    """Outside the closed form's domain a fabric above MAX_FLOW_EDGES is refused, not guessed."""
    monkeypatch.setattr(df, "MAX_FLOW_EDGES", 10)
    with pytest.raises(ValueError, match="no closed-form bisection"):
        df.bisection_Bps(_spec(4, 2, 2, 9), LINKS)
    assert df.bisection_Bps(_spec(4, 2, 2, 2), LINKS) == pytest.approx(8 * 50e9)


@pytest.mark.parametrize("a,p,h,groups,kw", [(4, 2, 2, 9, {}), (4, 2, 2, 2, {}), (2, 1, 3, 4, {}),
                                             (1, 2, 2, 3, {}), (4, 2, 2, 5, {"endpoints": 13}),
                                             (3, 1, 3, 7, {}), (2, 2, 1, 3, {"endpoints": 5})])
def test_routes_minimal_and_diameter(a, p, h, groups, kw):
    """All-pairs routes are valid, as short as any path with one global hop, never shorter than BFS;
    their maximum equals diameter_hops."""
    spec = _spec(a, p, h, groups, **kw)
    g = df.build(spec, LINKS, SWITCHES)
    fabric, r = _router(g)
    ep = fabric.routing["endpoints"]
    s, d = np.repeat(ep, len(ep)), np.tile(ep, len(ep))
    paths = r.route(s, d, 5)
    assert_paths_valid(fabric, s, d, paths)
    hops = paths.hops.reshape(len(ep), len(ep))
    assert np.array_equal(hops, _one_global_hop_dist(g, a))
    transit = np.ones(fabric.n_nodes, dtype=bool)
    transit[ep] = False
    for i in range(0, len(ep), 7):
        assert np.all(hops[i] >= bfs_hops(fabric, int(ep[i]), transit)[ep])
    assert hops.max() == df.diameter_hops(spec)


def test_diameter_closed_form_values():
    """Diameter: 5 in general, 4 when every router has a global link to every other group, 2 or 3 when tiny."""
    assert df.diameter_hops(_spec(16, 8, 8, 129)) == 5
    assert df.diameter_hops(_spec(4, 2, 2, 2)) == 4
    assert df.diameter_hops(_spec(4, 2, 2, 9, endpoints=2)) == 2
    assert df.diameter_hops(_spec(4, 2, 2, 9, endpoints=8)) == 3
    assert df.diameter_hops(_spec(4, 2, 2, 9, endpoints=1)) == 0


@pytest.mark.parametrize("a,p,h,groups", [(4, 2, 2, 2), (4, 2, 2, 5)])
def test_ecmp_spreads_global_links(a, p, h, groups):
    """Over random pairs no global link carries more than 2x the mean load per physical link."""
    g = df.build(_spec(a, p, h, groups), LINKS, SWITCHES)
    fabric, r = _router(g)
    ep = fabric.routing["endpoints"]
    rng = np.random.default_rng(3)
    s, d = rng.choice(ep, 20000), rng.choice(ep, 20000)
    load = np.bincount(r.route(s, d, 9).links, minlength=fabric.n_links)
    glob = fabric.link_tier == fabric.link_tier_names.index("global")
    per_link = load[glob] / fabric.link_count[glob]
    assert per_link.min() > 0 and per_link.max() < 2 * per_link.mean()


def test_routing_deterministic_and_salted():
    """The same (src, dst, salt) routes identically; another salt changes some global-link choices."""
    g = df.build(_spec(4, 2, 2, 2), LINKS, SWITCHES)
    fabric, r = _router(g)
    ep = fabric.routing["endpoints"]
    s, d = np.repeat(ep[:8], 8), np.tile(ep[-8:], 8)
    a, b, c = r.node_paths(s, d, 1), r.node_paths(s, d, 1), r.node_paths(s, d, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_attach_to_existing_endpoints_in_order():
    """Given NIC nodes, endpoint i is terminal i % p of router i // p; routes stay valid."""
    g = new_graph("cluster", "composed")
    nics = add_nodes(g, 10, "nic", "nic")[::-1]
    df.build(_spec(2, 2, 1, 3), LINKS, SWITCHES, g=g, endpoints=nics)
    routers = g.graph["routing"]["routers"]
    assert len(nodes_of(g, kind="accelerator")) == 0 and routers.min() > nics.max()
    for i, nic in enumerate(nics):
        assert [int(n) for n in g.neighbors(int(nic))] == [int(routers[i // 2])]
    fabric, r = _router(g)
    s, d = np.repeat(nics, 10), np.tile(nics, 10)
    assert_paths_valid(fabric, s, d, r.route(s, d, 0))
    with pytest.raises(ValueError, match=r"spec.endpoints \(9\) != 10"):
        df.build(_spec(2, 2, 1, 3, endpoints=9), LINKS, SWITCHES, g=new_graph("x", "y"), endpoints=nics)


def test_diameter_matches_routes_on_random_partial_fabrics():
    """On random small shapes and partial fills the closed-form diameter equals the routed maximum."""
    rng = np.random.default_rng(0)
    for _ in range(25):
        a, h, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        groups = int(rng.integers(2, a * h + 2))
        spec = _spec(a, p, h, groups, endpoints=int(rng.integers(1, a * p * groups + 1)))
        fabric, r = _router(df.build(spec, LINKS, SWITCHES))
        ep = fabric.routing["endpoints"]
        hops = r.route(np.repeat(ep, len(ep)), np.tile(ep, len(ep)), 0).hops
        assert hops.max() == df.diameter_hops(spec)
