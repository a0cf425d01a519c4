"""Fabric freezing and the generic routing machinery (shortest-path fallback, hashing, CSR)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oassim.topology.fabric import freeze
from oassim.topology.graph import add_links, add_nodes, new_graph
from oassim.topology.parts import LinkClass
from oassim.topology.routing import ShortestPathRouter, ecmp_choice, flow_hash, node_paths_to_paths, permute_paths
from tests.topology.pathcheck import assert_paths_valid, bfs_hops

L = LinkClass("test", 25e9, 1e-7, "copper", efficiency=0.9)


def _random_switch_graph(n_acc: int, n_sw: int, p: float, seed: int):
    """Accelerators hung on a random connected graph of switches (no family, no structure)."""
    rng = np.random.default_rng(seed)
    g = new_graph("random", "test")
    acc = add_nodes(g, n_acc, "accelerator", "accelerator")
    sw = add_nodes(g, n_sw, "switch", "sw", radix=64)
    core = nx.connected_watts_strogatz_graph(n_sw, 4 if n_sw > 4 else 2, p, seed=seed)
    add_links(g, sw[[u for u, _ in core.edges]], sw[[v for _, v in core.edges]], L, "isl")
    add_links(g, acc, sw[rng.integers(0, n_sw, n_acc)], L, "host")
    return g


def test_freeze_makes_two_directed_links_per_edge():
    """Each undirected edge becomes links 2e (low->high id) and 2e+1 with the edge's bandwidth."""
    g = _random_switch_graph(12, 6, 0.3, 0)
    f = freeze(g)
    assert f.n_links == 2 * g.number_of_edges()
    assert np.all(f.link_src[0::2] < f.link_dst[0::2])
    assert np.all(f.link_src[0::2] == f.link_dst[1::2]) and np.all(f.link_dst[0::2] == f.link_src[1::2])
    assert np.allclose(f.capacity_Bps, 25e9 * 0.9)
    for u, v in g.edges:
        assert f.link_bw[f.link_ids([u], [v])[0]] == g.edges[u, v]["bandwidth_Bps"]


def test_freeze_refuses_non_contiguous_ids():
    """A graph whose nodes are not 0..n-1 cannot be frozen (ids must stay stable)."""
    g = _random_switch_graph(4, 3, 0.0, 0)
    g.remove_node(2)
    with pytest.raises(ValueError, match="contiguous"):
        freeze(g)


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 40), st.integers(2, 12), st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_link_ids_match_a_dictionary_of_every_link(n_acc, n_sw, p, seed):
    """link_ids finds, for every directed pair of a random fabric, the link a plain dict holds."""
    f = freeze(_random_switch_graph(n_acc, n_sw, p, seed))
    table = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(f.link_src, f.link_dst))}
    rng = np.random.default_rng(seed)
    pick = rng.permutation(f.n_links)
    got = f.link_ids(f.link_src[pick], f.link_dst[pick])
    assert [table[int(f.link_src[i]), int(f.link_dst[i])] for i in pick] == got.tolist()


def test_link_ids_raises_for_non_adjacent_nodes():
    """Looking up a link between two nodes that are not adjacent is a KeyError."""
    f = freeze(_random_switch_graph(6, 4, 0.0, 0))
    with pytest.raises(KeyError):
        f.link_ids([0], [1])


def test_repeated_wiring_bundles_into_one_edge():
    """Wiring the same pair twice adds to one edge's count and bandwidth."""
    g = new_graph("b", "test")
    a = add_nodes(g, 2, "accelerator", "accelerator")
    add_links(g, a[0], a[1], L, "x", count=3)
    add_links(g, a[0], a[1], L, "x", count=2)
    assert g.number_of_edges() == 1
    assert g.edges[0, 1]["count"] == 5 and g.edges[0, 1]["bandwidth_Bps"] == 5 * 25e9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_sw=st.integers(4, 14), salt=st.integers(0, 5))
def test_shortest_path_fallback_is_minimal_and_valid(seed, n_sw, salt):
    """On an arbitrary graph the fallback router's paths are valid and as short as BFS allows."""
    g = _random_switch_graph(10, n_sw, 0.4, seed)
    f = freeze(g)
    r = ShortestPathRouter(f)
    rng = np.random.default_rng(seed)
    src = f.accel_node[rng.integers(0, 10, 40)]
    dst = f.accel_node[rng.integers(0, 10, 40)]
    p = r.route(src, dst, salt)
    assert_paths_valid(f, src, dst, p)
    transit = f.node_kind != 0  # accelerators do not forward
    for i in range(len(src)):
        assert p.hops[i] == bfs_hops(f, int(dst[i]), transit)[src[i]]


def test_shortest_path_spreads_over_equal_cost_paths():
    """Between two leaves joined by 4 equal spines, different flows use all 4 spines."""
    g = new_graph("leafspine", "test")
    acc = add_nodes(g, 2, "accelerator", "accelerator")
    leaf = add_nodes(g, 2, "switch", "leaf")
    spine = add_nodes(g, 4, "switch", "spine")
    add_links(g, acc, leaf, L, "host")
    for s in spine:
        add_links(g, leaf, [s, s], L, "up")
    f = freeze(g)
    r = ShortestPathRouter(f)
    used = {int(f.link_dst[r.route([acc[0]], [acc[1]], salt)[0][1]]) for salt in range(64)}
    assert used == set(spine.tolist())


def test_shortest_path_unreachable_is_an_error():
    """Routing to a node in another component raises with both node ids."""
    g = new_graph("two", "test")
    a = add_nodes(g, 4, "accelerator", "accelerator")
    s = add_nodes(g, 2, "switch", "sw")
    add_links(g, a[:2], s[0], L, "h")
    add_links(g, a[2:], s[1], L, "h")
    with pytest.raises(ValueError, match="not reachable"):
        ShortestPathRouter(freeze(g)).route([a[0]], [a[3]])


def test_flow_hash_is_deterministic_and_salt_sensitive():
    """The ECMP hash is a function of (src, dst, salt) and spreads choices evenly."""
    src = np.arange(20000)
    dst = src[::-1].copy()
    h1, h2 = flow_hash(src, dst, 0), flow_hash(src, dst, 0)
    assert np.array_equal(h1, h2)
    assert np.mean(flow_hash(src, dst, 1) != h1) > 0.99
    counts = np.bincount(ecmp_choice(h1, 8, 0), minlength=8)
    assert counts.min() > 0.9 * counts.mean()


def test_padded_node_paths_and_permutation():
    """Padded node rows become a link CSR; permute_paths reorders whole paths."""
    f = freeze(_random_switch_graph(6, 3, 0.0, 1))
    r = ShortestPathRouter(f)
    src, dst = f.accel_node[[0, 1, 2]], f.accel_node[[3, 4, 5]]
    p = r.route(src, dst)
    rows = np.full((3, 8), -1)
    for i in range(3):
        nodes = np.append(f.link_src[p[i]], f.link_dst[p[i][-1]])
        rows[i, : len(nodes)] = nodes
    q = node_paths_to_paths(f, rows)
    assert np.array_equal(q.ptr, p.ptr) and np.array_equal(q.links, p.links)
    perm = permute_paths(p.ptr, p.links, np.array([2, 0, 1]))
    for k, i in enumerate([2, 0, 1]):
        assert np.array_equal(perm[k], p[i])
