"""Topology-aware collectives on direct-connect fabrics (torus, full mesh): closed forms, the
endpoint-link bounds of the UB-Mesh and TPU presets, single-hop flows, auto's choice.

Bounds used below: a rank of a group that can reach its peers over L links of B bytes/s
(payload, times the tuning's achievable fraction eta of the link technology) must send at
least 2(n-1)/n * S for an all-reduce and (n-1)/n * S for a reduce-scatter / all-gather, so
busbw (nccl-tests: algbw times 2(n-1)/n, or (n-1)/n) can never exceed L * B (physical bound)
and reaches L * B * eta only with every link busy all the time (overheads excluded).
"""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import ALGORITHMS, CollectiveEngine, CollectiveRequest, FabricCaps, Tuning
from oassim.collectives.algorithms.grid import grid_layout, part_fractions
from oassim.topology.fabric import freeze
from oassim.topology.families import fullmesh, torus
from oassim.topology.parts import LinkClass
from tests.collectives.conftest import grid_fabric, preset_fabric

GiB = 2**30
B = 100e9  # bytes/s per link per direction on the hand-built grids
LAT = 0.5e-6  # s per hop


def _engine(fabric, tuning=None) -> CollectiveEngine:
    return CollectiveEngine(fabric, "analytical", tuning)


def _run(engine, op, ranks, size=GiB, algo="auto"):
    groups = ranks if isinstance(ranks, np.ndarray) else np.arange(ranks)[None, :]
    return engine.run(CollectiveRequest(op, size, groups, algo))


def _tier_Bps(fabric, tier: str) -> float:
    """Per-direction payload rate of one link of ``tier`` (all equal on these presets)."""
    rates = fabric.capacity_Bps[fabric.link_tier == fabric.link_tier_names.index(tier)]
    assert np.ptp(rates) == 0
    return float(rates[0])


# ------------------------------------------------------------------ UB-Mesh (2D full mesh)
@pytest.fixture(scope="module")
def ub_mesh():
    f = preset_fabric("ub-mesh", 64)
    return f, _engine(f)


def test_ub_mesh_row_all_gather_drives_its_seven_links(ub_mesh):
    """One mesh row (8 NPUs) all-gathers 1 GiB at busbw = 7 links x B x eta within 10%
    (each NPU sends its S/8 to 7 peers over 7 direct links at once) and never above 7 x B."""
    f, e = ub_mesh
    r = _run(e, "all_gather", 8)
    link = _tier_Bps(f, "mesh-dim0")
    assert r.algorithm == "fullmesh"
    assert r.busbw_Bps <= 7 * link
    assert r.busbw_Bps == pytest.approx(7 * link * e.eta_up, rel=0.10)


def test_ub_mesh_rack_all_reduce_near_the_2d_all_path_bound(ub_mesh):
    """The whole 8x8 rack all-reduces 1 GiB within 10% of the 2D all-path bound
    busbw = (7 + 7) links x B x eta: every NPU sends 2(n-1)/n S over its 14 mesh links."""
    f, e = ub_mesh
    r = _run(e, "all_reduce", 64)
    link = _tier_Bps(f, "mesh-dim0")
    assert _tier_Bps(f, "mesh-dim1") == link
    assert r.algorithm == "fullmesh"
    assert r.busbw_Bps <= 14 * link
    assert r.busbw_Bps >= 0.90 * 14 * link * e.eta_up


def test_ub_mesh_two_rows_balance_unequal_dimensions(ub_mesh):
    """Two rows (8 x 2 NPUs): each NPU reaches its group over 7 + 1 links, and the parts'
    split balances them: busbw within 10% of 8 x B x eta (equal halves would leave the
    single dim-1 link four times as loaded as the seven dim-0 links: ~0.4 of it)."""
    f, e = ub_mesh
    r = _run(e, "all_reduce", 16)
    link = _tier_Bps(f, "mesh-dim0")
    assert r.busbw_Bps <= 8 * link
    assert r.busbw_Bps >= 0.90 * 8 * link * e.eta_up


def test_part_fractions_balance_the_two_row_mesh():
    """8 x 2 full mesh, unit link rate: part 0 (dim 0 then 1) loads dim 0 by f0/8 and dim 1
    by f0/16, part 1 the reverse by f1/16 and f1/2; the balance is f0 = 7/8, load 15/128
    (the endpoint bound (15/16) / 8 links)."""
    W = np.array([[1 / 8, 1 / 16], [1 / 16, 1 / 2]])
    f = part_fractions(W)
    assert f == pytest.approx([7 / 8, 1 / 8], rel=1e-9)
    assert (f @ W).max() == pytest.approx(15 / 128, rel=1e-9)
    assert part_fractions(np.full((3, 3), 2.0)) == pytest.approx([1 / 3] * 3)


def test_group_that_is_not_a_sub_mesh_is_reported(ub_mesh):
    """12 NPUs (a row and a half) are no sub-mesh: auto runs another algorithm and the result
    says why fullmesh did not run; a whole rack carries no such note."""
    _, e = ub_mesh
    r = _run(e, "all_reduce", 12)
    assert r.algorithm != "fullmesh"
    assert any(n.startswith("fullmesh not used: the group's ranks are not a whole sub-grid") for n in r.notes)
    assert _run(e, "all_reduce", 64).notes == ()
    assert _run(CollectiveEngine(preset_fabric("dgx-h100-superpod", 16)), "all_reduce", 16).notes == ()


# ------------------------------------------------------------------ TPU v5p pod (3D torus)
@pytest.fixture(scope="module")
def tpu_pod():
    f = preset_fabric("tpu-v5p-pod", 4096)
    return f, _engine(f)


def test_tpu_pod_links_match_the_reference(tpu_pod):
    """Every v5p chip has 6 ICI links (3D torus degree) of 100 GB/s per direction
    (docs/sources.md, S18: 4,800 Gb/s = 600 GB/s over 6 links); in-cube links are copper
    ICI, and every link crossing a 4x4x4 cube face, the 16-long rings' wraparound included,
    is an optical circuit through an OCS."""
    f, _ = tpu_pod
    acc = f.accel_node
    ici, ocs = (f.link_tier_names.index(t) for t in ("ici", "ocs-circuit"))
    on_grid = np.isin(f.link_tier, [ici, ocs])
    out = np.bincount(f.link_src[on_grid], minlength=f.n_nodes)[acc]
    assert np.all(out == 6)
    assert set(f.link_bw[on_grid]) == {100e9}
    dims = np.array(f.supernode_grid.dims)
    assert tuple(dims) == (16, 16, 16)
    strides = np.array([1, 16, 256])
    rank = np.full(f.n_nodes, -1)
    rank[acc] = np.arange(len(acc))
    a, b = rank[f.link_src[on_grid]], rank[f.link_dst[on_grid]]
    ca, cb = (a[:, None] // strides) % dims, (b[:, None] // strides) % dims
    crosses_face = np.any(ca // 4 != cb // 4, axis=1)
    wrap = np.any(np.abs(ca - cb) == 15, axis=1)
    assert np.array_equal(f.link_tier[on_grid] == ocs, crosses_face)
    assert np.all(crosses_face[wrap])


def test_tpu_pod_all_reduce_uses_all_six_links(tpu_pod):
    """4,096 chips all-reduce 1 GiB at 75-100% of the 6-link bound 6 x B x eta (the 90 ring
    steps' per-step overhead of the tuning is the rest: 0.9 ms of ~4.5 ms at 10 us) and
    8 GiB at >= 90%; every chip's 6 links carry equal bytes (to 1%)."""
    f, e = tpu_pod
    link = _tier_Bps(f, "ici")
    bound = 6 * link * e.eta_up
    r = _run(e, "all_reduce", 4096)
    assert r.algorithm == "torus"
    assert 0.75 * bound <= r.busbw_Bps <= 6 * link
    assert _run(e, "all_reduce", 4096, 8 * GiB).busbw_Bps >= 0.90 * bound
    grid = np.isin(f.link_tier, [f.link_tier_names.index(t) for t in ("ici", "ocs-circuit")])
    loads = r.link_bytes[grid]
    assert loads.min() > 0 and loads.max() / loads.min() <= 1.01


def test_tpu_pod_all_gather_is_picked_by_auto(tpu_pod):
    """auto all-gathers 1 GiB over the pod with the torus algorithm, at >= 75% of 6 x B x eta."""
    f, e = tpu_pod
    r = _run(e, "all_gather", 4096)
    assert r.algorithm == "torus"
    assert r.busbw_Bps >= 0.75 * 6 * _tier_Bps(f, "ici") * e.eta_up


def test_tpu_line_group_uses_both_ring_directions(tpu_pod):
    """16 chips along x (a whole ring, closed through the OCS) all-reduce 1 GiB at 85-100%
    of 2 x B x eta: both links of the dimension, half the data each way."""
    f, e = tpu_pod
    r = _run(e, "all_reduce", 16)
    link = _tier_Bps(f, "ici")
    assert r.algorithm == "torus"
    assert 0.85 * 2 * link * e.eta_up <= r.busbw_Bps <= 2 * link


def test_tpu_cube_group_inside_the_pod(tpu_pod):
    """The 4x4x4 chips of one cube of the pod (runs of 4 in every dimension, no wraparound of
    their own): a corner chip reaches the group over 3 links, so busbw <= 3 x B, and the
    torus algorithm gets >= 85% of 3 x B x eta."""
    f, e = tpu_pod
    c = np.arange(4)
    cube = (c[:, None, None] + 16 * c[None, :, None] + 256 * c[None, None, :]).ravel()[None, :]
    r = _run(e, "all_reduce", cube)
    link = _tier_Bps(f, "ici")
    assert r.algorithm == "torus"
    assert 0.85 * 3 * link * e.eta_up <= r.busbw_Bps <= 3 * link


def test_tpu_v4_style_cube_closes_its_rings_through_the_ocs():
    """A 64-chip slice of one 4x4x4 cube (TPU v4 shape: its rings close through OCS
    circuits) all-reduces 1 GiB at 80-100% of 6 x B x eta."""
    f = grid_fabric("tpu-v5p-pod", (4, 4, 4), 64)
    e = _engine(f)
    r = _run(e, "all_reduce", 64)
    link = _tier_Bps(f, "ici")
    assert r.algorithm == "torus"
    assert 0.80 * 6 * link * e.eta_up <= r.busbw_Bps <= 6 * link


@pytest.mark.parametrize("case", ["tpu pod", "tpu line", "ub rack", "ub rows"])
def test_grid_flows_are_single_hop_and_within_capacity(case, tpu_pod, ub_mesh):
    """Whole rings and sub-meshes send every flow over one direct neighbour link (by the
    fabric's own router: dimension-order on the torus, direct on the full mesh), and no link
    is busy longer than the collective lasts."""
    (f, e), ranks = {"tpu pod": (tpu_pod, 4096), "tpu line": (tpu_pod, 16), "ub rack": (ub_mesh, 64),
                     "ub rows": (ub_mesh, np.arange(64).reshape(8, 8))}[case]
    groups = ranks if isinstance(ranks, np.ndarray) else np.arange(ranks)[None, :]
    req = CollectiveRequest("all_reduce", GiB, groups, f.supernode_grid.family)
    for p in e.phases(req):
        assert np.all(f.route_ranks(p.src, p.dst).hops == 1), p.label
    r = e.run(req)
    assert r.loaded_busy_s.max() <= r.time_s * (1 + 1e-9)


# ------------------------------------------------------------------ closed forms (ideal tuning)
def _bare(family: str, dims: list[int]):
    link = LinkClass("test-link", B, LAT, "copper")
    if family == "torus":
        g = torus.build(torus.Spec(dims=dims), {"ici": link}, {})
    else:
        g = fullmesh.build(fullmesh.Spec(dims=dims, links_per_dim=[1] * len(dims)),
                           {f"dim{d}": link for d in range(len(dims))}, {})
    fabric = freeze(g)
    return CollectiveEngine(fabric, "analytical", Tuning.ideal(), caps=FabricCaps.from_fabric(fabric, g))


@pytest.mark.parametrize("k", [3, 4, 8])
def test_bidirectional_ring_reduce_scatter_closed_form(k):
    """Reduce-scatter on one closed k-ring of a k x 4 torus (ideal profile): half the data each
    way round, T = (k-1)/k * S / (2B) + (k-1) * L (k-1 rounds, one hop of latency L each)."""
    e = _bare("torus", [k, 4])
    S = 64e6
    t = _run(e, "reduce_scatter", k, S, "torus").time_s
    assert t == pytest.approx((k - 1) / k * S / (2 * B) + (k - 1) * LAT, rel=1e-9)
    if k > 2:  # a one-way ring uses one of the two links
        assert _run(e, "reduce_scatter", k, S, "ring").time_s > t


def test_torus_all_reduce_is_the_sum_of_per_dimension_rings():
    """4x4x4 torus, ideal profile: three parts of S/3, stage s rings each part's S/(3*4^s)
    over one dimension, so T = 2 * sum_s (4-1)/4 * S/(3*4^s) / (2B) + 2 * 3 * 3 * L
    (reduce-scatter and all-gather, 3 dimensions of 3 rounds, one hop each)."""
    e = _bare("torus", [4, 4, 4])
    S = 96e6
    rs = sum(3 / 4 * S / (3 * 4**s) / (2 * B) for s in range(3))
    assert _run(e, "all_reduce", 64, S, "torus").time_s == pytest.approx(2 * rs + 18 * LAT, rel=1e-9)


def test_full_mesh_all_reduce_closed_form():
    """8x8 full mesh, ideal profile: two parts of S/2, each dimension's direct exchange sends
    S_part/8 over each of 7 links at once, so T = 2 * (S/2 + S/16) / (8B) + 4 L, the bound
    2 (63/64) S / (14 B) of 14 links (plus latency)."""
    e = _bare("fullmesh", [8, 8])
    S = 64e6
    t = _run(e, "all_reduce", 64, S, "fullmesh").time_s
    assert t == pytest.approx(2 * (S / 2 + S / 16) / (8 * B) + 4 * LAT, rel=1e-9)
    assert t == pytest.approx(2 * 63 / 64 * S / (14 * B) + 4 * LAT, rel=1e-9)


def test_grid_layout_rejects_what_does_not_map():
    """A strided torus set has no neighbour ring; a set that is no product is no sub-grid;
    another family's fabric is refused by name; any subset of a mesh row is a clique."""
    t = FabricCaps.from_fabric(preset_fabric("tpu-v5p-pod", 4096))
    assert "contiguous run" in grid_layout(np.arange(0, 16, 2)[None, :], t, "torus")
    assert not isinstance(grid_layout(np.array([[14, 15, 0, 1]]), t, "torus"), str)  # a run round the wrap
    assert "must be a fullmesh" in grid_layout(np.arange(8)[None, :], t, "fullmesh")
    m = FabricCaps.from_fabric(preset_fabric("ub-mesh", 64))
    assert not isinstance(grid_layout(np.array([[0, 3, 5]]), m, "fullmesh"), str)
    assert "not a whole sub-grid" in grid_layout(np.array([[0, 1, 8]]), m, "fullmesh")
    assert ALGORITHMS["torus"].unsupported(CollectiveRequest("all_reduce", GiB, np.arange(8)[None, :]), m)
