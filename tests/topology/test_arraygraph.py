"""The array build path equals the networkx build path exactly (oassim/topology/arraygraph.py).

The reference is the networkx path kept in the package (``graph.networkx_backend`` makes every
builder write a ``networkx.Graph``, ``cluster._stamp_networkx`` stamps it, ``fabric.
_freeze_networkx`` freezes it): the same node ids and attributes, the same directed link arrays
and capacities, the same routing records and the same routes for random rank pairs.
"""

from __future__ import annotations

import numpy as np
import pytest

from oassim.topology.arraygraph import ArrayGraph
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.fabric import Fabric, _freeze_networkx, freeze
from oassim.topology.families import clos2, dragonfly, fat_tree, torus
from oassim.topology.graph import add_links, add_nodes, as_networkx, networkx_backend, new_graph
from oassim.topology.parts import LinkClass, SwitchClass

# (preset, accelerators): several supernodes each, small enough to build the reference quickly
PRESETS = [
    ("dgx-h100-superpod", 1024),
    ("gb200-nvl72", 288),
    ("tpu-v5p-pod", 8192),  # 3-D torus supernodes with OCS circuits
    ("cloudmatrix384", 768),  # clos2 supernodes
    ("ub-mesh", 256),  # full-mesh supernodes
    ("dgx-a100-superpod", 256),
]


def _both(build):
    new = build()
    with networkx_backend():
        ref = build()
    assert isinstance(new, ArrayGraph) and not isinstance(ref, ArrayGraph)
    return new, ref


def _equal_value(a, b) -> bool:
    if isinstance(a, Fabric):
        return isinstance(b, Fabric) and not _fabric_diff(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal_value(x, y) for x, y in zip(a, b))
    return a == b


def _fabric_diff(a: Fabric, b: Fabric) -> list[str]:
    """Names of the fields that differ (arrays by dtype and value, records recursively)."""
    return [k for k in Fabric.__dataclass_fields__ if not _equal_value(getattr(a, k), getattr(b, k))]


def _assert_same_graph(new: ArrayGraph, ref) -> None:
    """The materialised view is the reference graph: nodes, attributes, edges and edge order."""
    view = new.to_networkx()
    assert list(view.nodes) == list(ref.nodes)
    assert all(view.nodes[n] == ref.nodes[n] for n in ref.nodes)
    assert list(view.edges) == list(ref.edges)
    assert all(view.edges[u, v] == ref.edges[u, v] for u, v in ref.edges)


def _assert_same_routes(fa: Fabric, fb: Fabric, pairs: int = 2000) -> None:
    rng = np.random.default_rng(7)
    src = rng.integers(0, fa.n_accelerators, pairs)
    dst = rng.integers(0, fa.n_accelerators, pairs)
    for salt in (0, 3):
        pa, pb = fa.route_ranks(src, dst, salt), fb.route_ranks(src, dst, salt)
        assert np.array_equal(pa.ptr, pb.ptr) and np.array_equal(pa.links, pb.links)
        sa = fa.spread(fa.accel_node[src], fa.accel_node[dst], salt)
        sb = fb.spread(fb.accel_node[src], fb.accel_node[dst], salt)
        assert np.array_equal(sa[0].ptr, sb[0].ptr) and np.array_equal(sa[0].links, sb[0].links)
        assert np.array_equal(sa[1], sb[1]) and np.array_equal(sa[2], sb[2])


@pytest.mark.parametrize("preset,n", PRESETS)
def test_cluster_presets_freeze_to_the_reference_fabric(preset, n):
    """Every frozen array, capacity, routing record and route matches the networkx path."""
    new, ref = _both(lambda: build_cluster(load_cluster(preset, n)))
    fa, fb = freeze(new), _freeze_networkx(ref)
    assert fa.n_accelerators >= n and fa.n_links > fa.n_nodes
    assert _fabric_diff(fa, fb) == []
    assert np.array_equal(fa.capacity_Bps, fb.capacity_Bps)
    _assert_same_routes(fa, fb)
    _assert_same_graph(new, ref)


LINK = LinkClass("l", 50e9, 1e-7, "optical", rate_Gbps=400)
SW = SwitchClass("sw", radix=16, latency_s=2e-7, port_rate_Gbps=400)


def test_bare_families_match_the_reference():
    """A 3-tier fat-tree, a dragonfly, a clos2 and an optical torus built alone."""
    builds = [
        lambda: fat_tree.build(fat_tree.Spec(endpoints=200, tiers=3), dict.fromkeys(fat_tree.LINK_ROLES, LINK),
                               dict.fromkeys(("leaf", "spine", "core"), SW)),
        lambda: dragonfly.build(dragonfly.Spec(routers_per_group=4, terminals_per_router=2,
                                               global_links_per_router=2, groups=7),
                                dict.fromkeys(dragonfly.LINK_ROLES, LINK), {"router": SW}),
        lambda: clos2.build(clos2.Spec(nodes=8, accelerators_per_node=8, l1_per_node=2, links_per_l1=1,
                                       l1_uplinks=8, l2_per_plane=4),
                            dict.fromkeys(clos2.LINK_ROLES, LINK), dict.fromkeys(clos2.SWITCH_ROLES, SW)),
        lambda: torus.build(torus.Spec(dims=(4, 4, 8), cube=(4, 4, 4)), {"ici": LINK, "ocs": LINK},
                            {"ocs": SwitchClass("ocs", radix=64, latency_s=5e-8)}),
    ]
    for build in builds:
        new, ref = _both(build)
        fa, fb = freeze(new), _freeze_networkx(ref)
        assert _fabric_diff(fa, fb) == [], build
        _assert_same_routes(fa, fb, 500)
        _assert_same_graph(new, ref)


def test_repeated_wiring_adds_counts_in_both_paths():
    """Wiring a pair again (in a later call, reversed, or twice in one call) adds links."""
    def build():
        g = new_graph("t", "test")
        a = add_nodes(g, 3, "accelerator", "accelerator")
        add_links(g, [a[0], a[1]], [a[1], a[2]], LINK, tier="x")
        add_links(g, a[1], a[0], LINK, tier="y", count=2)
        add_links(g, [a[2], a[2]], [a[0], a[0]], LINK, tier="x")
        return g
    new, ref = _both(build)
    fa, fb = freeze(new), _freeze_networkx(ref)
    assert _fabric_diff(fa, fb) == []
    # edge (0,1): 1 + 2 links, first wired in tier x; edge (0,2): two links from one call
    assert as_networkx(new).edges[0, 1]["count"] == 3 and as_networkx(new).edges[0, 1]["tier"] == "x"
    assert as_networkx(new).edges[0, 2]["count"] == 2
    assert fa.link_bw[fa.link_ids([0], [2])][0] == pytest.approx(2 * LINK.bandwidth_Bps, rel=1e-15)


def test_a_materialised_graph_is_the_truth():
    """Once the networkx view exists, edits to it are what freeze sees."""
    g = new_graph("t", "test")
    a = add_nodes(g, 2, "accelerator", "accelerator")
    add_links(g, a[0], a[1], LINK, tier="x")
    g.edges[0, 1]["bandwidth_Bps"] = 1.0  # through the networkx view
    add_links(g, a[0], a[1], LINK, tier="x")
    f = freeze(g)
    assert f.link_bw[0] == 1.0 + LINK.bandwidth_Bps and f.link_count[0] == 2


def test_links_to_missing_nodes_are_refused():
    g = new_graph("t", "test")
    add_nodes(g, 2, "switch", "leaf")
    add_links(g, 0, 5, LINK, tier="x")
    with pytest.raises(ValueError, match="add_nodes"):
        freeze(g)


def test_building_and_routing_a_cluster_loads_neither_networkx_nor_numba():
    """The run path's topology work (load, build, freeze, structural routes) is numpy only."""
    import subprocess
    import sys

    code = ("import sys; from oassim.topology.cluster import build_fabric; "
            "f = build_fabric('dgx-h100-superpod', 512); f.route_ranks([0, 1], [300, 511]); "
            "f.spread(f.accel_node[:2], f.accel_node[2:4]); "
            "print(','.join(m for m in ('networkx', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
