"""Blast radius by family: what one failure takes down follows from each family's structure."""

from __future__ import annotations

import pytest

from oassim.experiments.reliability import _shape, cluster_counts
from oassim.reliability import component_counts, load_rates
from oassim.reliability.exposure import blast_radius


def _effects(ref: str, n: int, cache: dict) -> dict[tuple[str, str], tuple]:
    info, rc, _ = cluster_counts(ref, n, cache)
    shape = _shape(info, rc, load_rates().accelerators_per_host)
    return {(c, t): blast_radius(c, t, info, shape) for c, t, _ in component_counts(info, shape)}, info


def test_dgx_node_and_rail(counts_cache):
    """DGX H100: a GPU, HBM, NIC or NVSwitch takes its 8-GPU host; a leaf takes one rail's hosts; spines degrade."""
    eff, info = _effects("dgx-h100-superpod", 1024, counts_cache)
    for comp in ("accelerator", "hbm", "nic"):
        assert eff[(comp, comp if comp == "nic" else "accelerator")][:2] == ("stop", 8)
    assert eff[("scaleup_switch", "scaleup")][:2] == ("stop", 8)
    leaves = next(r["count"] for r in info["nodes"] if r["tier"] == "leaf")
    assert eff[("switch", "leaf")][:2] == ("stop", 8 * 1024 // leaves)
    uplinks = next(r["edges"] for r in info["links"] if r["tier"] == "leaf-spine") / leaves  # spines per leaf
    action, units, f, _ = eff[("switch", "spine")]
    assert (action, units) == ("degraded", 0) and f == pytest.approx(1 / uplinks)
    assert eff[("software", "accelerator")][:2] == ("stop", 0)


def test_nvl72_tray_and_switch_plane(counts_cache):
    """GB200 NVL72: a GPU takes its 4-GPU tray; one of the 18 NVSwitch chips or a GPU's 18 links degrades."""
    eff, _ = _effects("gb200-nvl72", 144, counts_cache)
    assert eff[("accelerator", "accelerator")][:2] == ("stop", 4)
    action, _, f, _ = eff[("scaleup_switch", "scaleup")]
    assert action == "degraded" and f == pytest.approx(1 / 18)
    action, _, f, _ = eff[("copper_link", "scaleup")]
    assert action == "degraded" and f == pytest.approx(1 / 18)


def test_tpu_ocs_group(counts_cache):
    """TPU v5p: an ICI link or OCS circuit breaks a torus ring: a 4x4x4 cube (64 chips) is swapped in."""
    eff, _ = _effects("tpu-v5p-pod", 4096, counts_cache)
    for key in (("copper_link", "ici"), ("optical_link", "ocs-circuit"), ("ocs", "ocs")):
        assert eff[key][:2] == ("stop", 64)
    assert eff[("optical_link", "leaf-spine")][0] == "degraded"


def test_clos2_planes_and_full_mesh_links(counts_cache):
    """CloudMatrix384: an on-board L1 chip takes its node, an L2 switch 1/16 of the uplinks; UB-Mesh: 1 of 7 links."""
    eff, _ = _effects("cloudmatrix384", 384, counts_cache)
    assert eff[("scaleup_switch", "scaleup-l1")][:2] == ("stop", 8)
    action, _, f, _ = eff[("scaleup_switch", "scaleup-l2")]
    assert action == "degraded" and f == pytest.approx(1 / 16)
    assert eff[("switch", "leaf")][1] <= 384
    eff, _ = _effects("ub-mesh", 1024, counts_cache)
    action, _, f, _ = eff[("copper_link", "mesh-dim0")]
    assert action == "degraded" and f == pytest.approx(1 / 7)


@pytest.mark.parametrize("ref, n", [("dgx-h100-superpod", 256), ("cloudmatrix384", 384), ("tpu-v5p-pod", 128),
                                    ("ub-mesh", 128), ("gb200-nvl72", 144)])
def test_reliability_counts_equal_topo_info_rows(ref, n):
    """The campaign's own counts (graph or fabric arrays) are exactly ``oassim topo info``'s rows."""
    from oassim.reliability.counts import reliability_counts
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.topology.metrics import cluster_info

    g = build_cluster(load_cluster(ref, n))
    fab = freeze(g)
    full, mine, arrays = cluster_info(g, fab), reliability_counts(g), reliability_counts(g, fab)
    for key in ("name", "accelerators", "nodes", "links"):
        assert mine[key] == full[key], key
    assert arrays["links"] == [{k: v for k, v in r.items() if k != "technology"} for r in full["links"]]
    for key in ("name", "accelerators", "nodes"):
        assert arrays[key] == full[key], key
