"""Small fabrics with known closed forms, and cached preset fabrics, for collective tests."""

from __future__ import annotations

from functools import lru_cache

import networkx as nx
import numpy as np
import pytest

from oassim.collectives import CollectiveEngine, FabricCaps, Tuning
from oassim.topology.fabric import Fabric, freeze
from oassim.topology.families import switched
from oassim.topology.graph import add_links, add_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass, SwitchClass

B = 100e9  # bytes/s per accelerator port, per direction
LINK_LAT = 0.5e-6  # s per hop
SWITCH_LAT = 0.3e-6  # s port to port
PATH_LAT = 2 * LINK_LAT + SWITCH_LAT  # accelerator -> switch -> accelerator


def single_switch(n: int, inr: bool = False, domain_each: bool = False) -> tuple[Fabric, nx.Graph]:
    """n accelerators on one non-blocking switch, one link of bandwidth B each (one scale-up
    domain, or with ``domain_each`` every accelerator a domain of its own, as nodes on a
    scale-out switch)."""
    spec = switched.Spec(size=n, switches=1, links_per_accelerator=1)
    link = LinkClass("test-link", B, LINK_LAT, "copper")
    sw = SwitchClass("test-switch", radix=n, latency_s=SWITCH_LAT, in_network_reduction=inr)
    g = switched.build(spec, {"scaleup": link}, {"scaleup": sw})
    for node, d in g.nodes(data=True):
        if d["kind"] == "switch":
            d["latency_s"] = SWITCH_LAT
        elif domain_each and d["kind"] == "accelerator":
            d["domain"] = d["rank"]
    return freeze(g), g


def ring_fabric(n: int) -> tuple[Fabric, nx.Graph]:
    """n accelerators wired in a physical ring (each to its two neighbours), no switches."""
    g = new_graph("ring", "ring")
    acc = add_nodes(g, n, "accelerator", "accelerator", domain=0)
    link = LinkClass("test-link", B, LINK_LAT, "copper")
    add_links(g, acc, np.roll(acc, -1), link, tier="ring")
    set_routing(g, "shortest")
    return freeze(g), g


def two_switches(trunk_Bps: float) -> tuple[Fabric, nx.Graph]:
    """Ranks 0,1 on switch A, ranks 2,3 on switch B, one A-B trunk link (oversubscribed 2:1
    when trunk_Bps = B). Each rank is its own domain, so every link is scale-out."""
    g = new_graph("two-switches", "test")
    acc = add_nodes(g, 4, "accelerator", "accelerator", domain=[0, 1, 2, 3])
    sw = add_nodes(g, 2, "switch", "leaf", spec="test-switch", in_network_reduction=False)
    link = LinkClass("test-link", B, LINK_LAT, "copper")
    add_links(g, acc, sw[[0, 0, 1, 1]], link, tier="host")
    add_links(g, sw[0], sw[1], LinkClass("trunk", trunk_Bps, LINK_LAT, "copper"), tier="trunk")
    set_routing(g, "shortest")
    return freeze(g), g


def engine_for(fg: tuple[Fabric, nx.Graph], network: str = "analytical", tuning: Tuning | None = None,
               **kw) -> CollectiveEngine:
    """An engine on a hand-built fabric, by default with the ideal tuning (textbook costs)."""
    fabric, g = fg
    return CollectiveEngine(fabric, network, tuning or Tuning.ideal(), caps=FabricCaps.from_fabric(fabric, g), **kw)


@lru_cache(maxsize=None)
def preset_fabric(name: str, accelerators: int) -> Fabric:
    """A preset cluster scaled to ``accelerators`` (cached across tests)."""
    from oassim.topology.cluster import build_fabric

    return build_fabric(name, accelerators)


@lru_cache(maxsize=None)
def grid_fabric(preset: str, dims: tuple[int, ...], accelerators: int) -> Fabric:
    """A direct-connect preset (torus, full mesh) with its supernode resized to ``dims``."""
    from oassim.presets import find_preset
    from oassim.specio import read_yaml, validate
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import ClusterSpec, resolve_cluster

    data = read_yaml(find_preset("topologies", preset))
    data["supernode"]["spec"]["dims"] = list(dims)
    data["accelerators"] = accelerators
    return freeze(build_cluster(resolve_cluster(validate(ClusterSpec, data, source=preset))))


@pytest.fixture(scope="session")
def h100_16() -> Fabric:
    """Two DGX H100 nodes (16 ranks) on the NDR fat-tree."""
    return preset_fabric("dgx-h100-superpod", 16)


@pytest.fixture(scope="session")
def a100_8() -> Fabric:
    """One DGX A100 node."""
    return preset_fabric("dgx-a100-superpod", 8)


# 128 H100 on a rail-optimised fat-tree with adaptive routing (all-to-all aggregation tests)
@pytest.fixture(scope="module")
def three_tier(tmp_path_factory):
    from oassim.topology.cluster import build_fabric
    from tests.collectives.test_all_to_all_aggregated import _cluster

    return build_fabric(_cluster(tmp_path_factory.mktemp("a2a"), "adaptive", 3, radix=8), 128)


@pytest.fixture(scope="module")
def two_tier(tmp_path_factory):
    from oassim.topology.cluster import build_fabric
    from tests.collectives.test_all_to_all_aggregated import _cluster

    return build_fabric(_cluster(tmp_path_factory.mktemp("a2a"), "adaptive", 2), 128)
