"""Composed clusters: presets build, scale, route and measure as the design says."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.topology.checks import check_graph
from oassim.topology.cluster import build_cluster, rail_order
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.fabric import freeze
from oassim.topology.metrics import cluster_info, optical_module_counts
from tests.topology.maxflow import natural_bisection_maxflow
from tests.topology.pathcheck import assert_paths_valid

PRESETS = ["dgx-a100-superpod", "dgx-h100-superpod", "gb200-nvl72", "cloudmatrix384", "ub-mesh", "tpu-v5p-pod"]
# a size per preset that spans several supernodes yet builds in well under a second
SMALL = {
    "dgx-a100-superpod": 256,
    "dgx-h100-superpod": 256,
    "gb200-nvl72": 288,
    "cloudmatrix384": 768,
    "ub-mesh": 256,
    "tpu-v5p-pod": 8192,
}


def _build(name: str, n: int):
    rc = load_cluster(name, n)
    g = build_cluster(rc)
    return rc, g, freeze(g)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_and_passes_design_rules(name):
    """Every cluster preset builds at multi-supernode scale with no design-rule violation."""
    rc, g, f = _build(name, SMALL[name])
    assert f.n_accelerators == rc.accelerators >= SMALL[name]
    assert rc.supernodes >= 2
    assert [str(v) for v in check_graph(g)] == []


@pytest.mark.parametrize("name", PRESETS)
def test_preset_routes_are_valid_paths(name):
    """Random accelerator pairs, inside and across supernodes, get connected loop-free paths."""
    rc, g, f = _build(name, SMALL[name])
    rng = np.random.default_rng(1)
    src = rng.integers(0, f.n_accelerators, 400)
    dst = rng.integers(0, f.n_accelerators, 400)
    dst[:50] = (src[:50] // rc.domain_size) * rc.domain_size + rng.integers(0, rc.domain_size, 50)  # same domain
    s, d = f.accel_node[src], f.accel_node[dst]
    assert_paths_valid(f, s, d, f.route(s, d))


def test_scaling_rounds_up_to_whole_supernodes():
    """16,384 GPUs on NVL72 racks means 228 racks (16,416 GPUs), and info says so."""
    rc = load_cluster("gb200-nvl72", 16384)
    assert (rc.supernodes, rc.accelerators) == (228, 16416)


def test_dgx_h100_superpod_switch_counts_match_reference_architecture():
    """16,384 H100 give leaf-spine-core 512-512-256 Quantum-2 switches, as DGX SuperPOD RA [S54]."""
    rc, g, _ = _build("dgx-h100-superpod", 16384)
    tiers = {}
    for _, d in g.nodes(data=True):
        tiers[d["tier"]] = tiers.get(d["tier"], 0) + 1
    assert (tiers["leaf"], tiers["spine"], tiers["core"]) == (512, 512, 256)
    assert tiers["scaleup"] == 2048 * 4


def test_rail_optimised_leaves_serve_one_rail_of_one_scalable_unit():
    """Every leaf's NICs carry one rail and come from one SU of 32 DGX nodes (RA [S53])."""
    _, g, _ = _build("dgx-h100-superpod", 1024)
    for n, d in g.nodes(data=True):
        if d["tier"] != "leaf":
            continue
        nics = [m for m in g.neighbors(n) if g.nodes[m]["kind"] == "nic"]
        assert len(nics) == 32
        assert len({g.nodes[m]["rail"] for m in nics}) == 1
        assert len({g.nodes[m]["domain"] // 32 for m in nics}) == 1


def test_rail_order_is_a_permutation_grouping_rails():
    """rail_order lists every endpoint once, one rail per block of `unit` endpoints."""
    rails = np.tile(np.arange(8), 64)
    order = rail_order(rails, nics=1, unit=16)
    assert sorted(order.tolist()) == list(range(len(rails)))
    blocks = rails[order].reshape(-1, 16)
    assert np.all(blocks == blocks[:, :1])


@pytest.mark.parametrize(
    "name,n",
    [
        ("dgx-h100-superpod", 64),
        ("dgx-h100-superpod", 24),  # odd supernode count: the middle node is split
        ("dgx-h100-superpod", 128),
        ("cloudmatrix384", 768),
        ("ub-mesh", 256),
    ],
)
def test_cluster_bisection_matches_max_flow(name, n):
    """The reported cluster bisection equals max-flow between the rank halves (rel. 1e-9)."""
    rc, g, f = _build(name, n)
    info = cluster_info(g, f)
    assert info["cluster_bisection_GBps"] * 1e9 == pytest.approx(natural_bisection_maxflow(g), rel=1e-9)


def test_supernode_bisection_matches_max_flow_of_one_supernode():
    """An NVL72 rack: 36 GPUs x 18 NVLinks x 50 GB/s inside, plus 36 x 400G NICs outside."""
    rc, g, f = _build("gb200-nvl72", 72)
    info = cluster_info(g, f)
    assert info["supernode_bisection_GBps"] == pytest.approx(36 * 18 * 50)
    assert info["cluster_bisection_GBps"] == pytest.approx(36 * 18 * 50 + 36 * 50)
    assert info["cluster_bisection_GBps"] * 1e9 == pytest.approx(natural_bisection_maxflow(g), rel=1e-9)


@pytest.mark.parametrize("name,n,hops", [("dgx-h100-superpod", 1024, 6), ("dgx-h100-superpod", 4096, 8),
                                         ("gb200-nvl72", 72, 2)])
def test_diameter_is_the_longest_up_down_route(name, n, hops):
    """Diameter: 2 inside a switched supernode; +2 NIC hops around a 2- or 3-tier fat-tree."""
    _, g, f = _build(name, n)
    assert cluster_info(g, f)["diameter_hops"] == hops


def test_optics_per_gpu_in_published_range_for_nvidia_superpod():
    """A 3-tier DGX H100 SuperPOD needs 3 to 4.5 optical modules per GPU (reported 1:3-1:4.5 [S77])."""
    _, g, f = _build("dgx-h100-superpod", 4096)
    per_gpu = sum(optical_module_counts(g).values()) / f.n_accelerators
    assert 3.0 <= per_gpu <= 4.5


def test_twin_port_modules_serve_two_links():
    """Leaf-spine links end in twin-port 800G OSFP: half as many modules as link ends."""
    _, g, _ = _build("dgx-h100-superpod", 1024)
    counts = optical_module_counts(g)
    ls_links = sum(e["count"] for *_, e in g.edges(data=True) if e["tier"] == "leaf-spine")
    assert counts["osfp-800g-2xdr4"] == ls_links  # 2 ends / 2 links per module
    host = sum(e["count"] for *_, e in g.edges(data=True) if e["tier"] == "host")
    assert counts["osfp-400g-sr4"] == 2 * host


def test_power_sums_accelerators_and_optics_and_names_unknowns():
    """Power adds accelerator TDP and module power; parts with no published figure are listed."""
    _, g, f = _build("dgx-h100-superpod", 1024)
    info = cluster_info(g, f)
    counts = optical_module_counts(g)
    assert info["power_W"]["accelerators_W"] == pytest.approx(1024 * 700)
    assert info["power_W"]["optics_W"] == pytest.approx(counts["osfp-400g-sr4"] * 9 + counts["osfp-800g-2xdr4"] * 17)
    assert "quantum-2" in info["power_unknown_for"]
    assert info["capital_cost_USD"] is None


def test_spread_fractions_sum_to_one_per_transfer():
    """Striping a transfer over NVSwitch chips conserves bytes: fractions per pair sum to 1."""
    _, _, f = _build("dgx-h100-superpod", 64)
    rng = np.random.default_rng(3)
    src = f.accel_node[rng.integers(0, 64, 200)]
    dst = f.accel_node[rng.integers(0, 64, 200)]
    paths, owner, frac = f.spread(src, dst)
    total = np.bincount(owner, weights=frac, minlength=200)
    live = src != dst
    assert np.allclose(total[live], 1.0)
    assert len(paths) == len(owner)


def test_intra_supernode_pairs_never_leave_the_supernode():
    """Two GPUs of one DGX node talk over NVSwitch only (2 hops, no NIC)."""
    _, g, f = _build("dgx-h100-superpod", 64)
    src = f.accel_node[np.arange(0, 64, 8)]
    dst = f.accel_node[np.arange(0, 64, 8) + 3]
    p = f.route(src, dst)
    assert np.all(p.hops == 2)
    tiers = {f.link_tier_names[t] for t in f.link_tier[p.links]}
    assert tiers == {"scaleup"}


@pytest.mark.parametrize("name", PRESETS)
def test_total_power_includes_every_accelerator(name):
    """The power total counts accelerators at their TDP (total >= n x TDP); with no published
    accelerator figure there is no total (None) rather than a total of switches and optics."""
    from oassim.hardware import load_catalog

    rc, g, f = _build(name, 64)
    info = cluster_info(g, f)
    tdp = load_catalog().get("accelerator", rc.accelerator.name).power_W
    pw = info["power_W"]
    if tdp is None:
        assert pw["total_W"] is None and rc.accelerator.name in info["power_unknown_for"]
        assert info["power_known_W"] == pytest.approx(pw["switches_W"] + pw["nics_W"] + pw["optics_W"])
    else:
        assert pw["accelerators_W"] == pytest.approx(info["accelerators"] * tdp)
        assert pw["total_W"] >= info["accelerators"] * tdp
        assert pw["total_W"] == pytest.approx(pw["accelerators_W"] + pw["switches_W"] + pw["nics_W"] + pw["optics_W"])
    assert set(info["power_includes"]) == {"accelerators", "switches", "NICs", "optical modules"}


def test_tpu_pod_dcn_links_carry_optical_modules():
    """The TPU v5p pod's DCN (scale-out) links are optical with a module at each end (one per
    port: 2 x the DCN links), counted in the optics total beside the OCS circuits' ends."""
    _, g, f = _build("tpu-v5p-pod", 64)
    dcn = [e for *_, e in g.edges(data=True) if e["tier"] in ("host", "leaf-spine", "spine-core")]
    assert dcn and all(e["medium"] == "optical" and e.get("module") for e in dcn)
    counts = optical_module_counts(g)
    n_dcn = sum(int(e.get("count", 1)) for e in dcn)
    assert counts[dcn[0]["module"]] == 2 * n_dcn
    info = cluster_info(g, f)
    assert info["optical_modules"] == sum(counts.values()) and info["power_W"]["optics_W"] >= 2 * n_dcn * 9
