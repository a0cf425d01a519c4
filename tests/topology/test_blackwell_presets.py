"""The Blackwell presets (dgx-b200, dgx-b300, gb300-nvl72) build as their reference figures say."""

from __future__ import annotations

from collections import Counter

import pytest

from oassim.topology.checks import check_graph
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.fabric import freeze
from oassim.topology.metrics import cluster_info

# preset, size, per-GPU scale-out Gb/s (hardware reference A2: CX-7 400G on B200, CX-8 800G on B300/GB300)
CASES = [("dgx-b200", 256, 400), ("dgx-b300", 256, 800), ("gb300-nvl72", 288, 800)]


def _tiers(g) -> Counter:
    return Counter(d["tier"] for _, d in g.nodes(data=True))


@pytest.mark.parametrize("name, n, nic_Gbps", CASES)
def test_blackwell_presets_pass_design_rules_with_published_bandwidths(name, n, nic_Gbps):
    """Each builds with no design-rule violation, 18 NVLink 5 links of 50 GB/s per GPU (900 GB/s)
    and one NIC of the published rate per GPU."""
    rc = load_cluster(name, n)
    g = build_cluster(rc)
    assert [str(v) for v in check_graph(g)] == []
    info = cluster_info(g, freeze(g))
    assert info["scaleup_bandwidth_per_accelerator_GBps"] == pytest.approx(900.0)
    assert info["scaleout_bandwidth_per_accelerator_GBps"] == pytest.approx(nic_Gbps / 8)


def test_hgx_b200_board_has_two_switch_chips_and_nvl72_eighteen():
    """8 GPUs x 18 ports = 2 chips x 72 ports on an HGX board; 72 x 18 = 18 x 72 in an NVL72 rack."""
    assert _tiers(build_cluster(load_cluster("dgx-b200", 64)))["scaleup"] == 8 * 2
    assert _tiers(build_cluster(load_cluster("gb300-nvl72", 144)))["scaleup"] == 2 * 18


def test_dgx_b200_superpod_switch_counts_match_reference_architecture():
    """16,384 B200 give leaf-spine-core 512-512-256 Quantum-2 switches (DGX B200 SuperPOD RA, S54)."""
    t = _tiers(build_cluster(load_cluster("dgx-b200", 16384)))
    assert (t["leaf"], t["spine"], t["core"]) == (512, 512, 256)
