"""Cluster drawings: every preset draws a readable PNG, grouping conserves bandwidth, writes are atomic."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from oassim.cli import main
from oassim.errors import SpecError
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.draw import SUPERNODES, draw_cluster, group_fabric
from oassim.topology.fabric import freeze

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# 2 to 4 supernodes per preset; tpu-v5p-pod's supernode is a 4,096-chip torus (2 of them build fast)
SMALL = {
    "dgx-a100-superpod": 32,
    "dgx-h100-superpod": 32,
    "gb200-nvl72": 216,
    "cloudmatrix384": 768,
    "ub-mesh": 192,
    "tpu-v5p-pod": 8192,
}
DPI = 40  # small images keep the suite fast; the figure is 20 x 9.5 inches


@pytest.fixture(scope="module")
def built():
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            g = build_cluster(load_cluster(name, SMALL[name]))
            cache[name] = (g, freeze(g))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_preset_draws_a_valid_png(name, built, tmp_path):
    """Each preset, at 2-4 supernodes, draws to a PNG that matplotlib reads back at the figure's size."""
    g, fabric = built(name)
    assert g.graph["supernodes"] >= 2
    out = draw_cluster(g, fabric, tmp_path / f"{name}.png", dpi=DPI)
    assert out == tmp_path / f"{name}.png"
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    img = imread(out)
    assert img.shape[:2] == (round(9.5 * DPI), 20 * DPI)
    assert img[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.png"]  # no temporary file left behind


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("max_groups", [1, 3, 64])
def test_every_node_is_in_exactly_one_group_and_groups_are_bounded(name, max_groups, built):
    """Each node has one valid group id, groups partition the nodes, and each layer has <= max_groups groups."""
    g, fabric = built(name)
    gg = group_fabric(fabric, max_groups=max_groups)
    assert gg.node_group.shape == (fabric.n_nodes,)
    assert gg.node_group.min() >= 0 and gg.node_group.max() < gg.n_groups
    assert gg.n_members.sum() == fabric.n_nodes and np.all(gg.n_members > 0)
    layers = np.asarray(gg.layer)
    for layer in set(gg.layer):
        assert (layers == layer).sum() <= max_groups
    assert gg.n_accelerators.sum() == fabric.n_accelerators
    assert gg.n_domains.sum() == g.graph["supernodes"]
    # supernode groups hold whole domains: every node of a domain lands in the same group
    dom = fabric.node_domain
    for d in np.unique(dom[dom >= 0]):
        assert len(np.unique(gg.node_group[dom == d])) == 1
    assert set(layers[gg.node_group[fabric.accel_node]]) == {SUPERNODES}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("max_groups", [2, 64])
def test_group_bandwidth_equals_bandwidth_of_links_crossing_groups(name, max_groups, built):
    """Per pair of groups, aggregated bandwidth and link count equal the sums over the graph's crossing edges."""
    g, fabric = built(name)
    gg = group_fabric(fabric, max_groups=max_groups)
    want_bw: dict[tuple[int, int], float] = defaultdict(float)
    want_links: dict[tuple[int, int], int] = defaultdict(int)
    for u, v, e in g.edges(data=True):
        a, b = int(gg.node_group[u]), int(gg.node_group[v])
        if a != b:
            want_bw[min(a, b), max(a, b)] += e["bandwidth_Bps"]
            want_links[min(a, b), max(a, b)] += e["count"]
    got = {(int(u), int(v)): i for i, (u, v) in enumerate(zip(gg.edge_u, gg.edge_v))}
    assert set(got) == set(want_bw)
    assert np.all(gg.edge_u < gg.edge_v)
    for key, i in got.items():
        assert gg.edge_bw_Bps[i] == pytest.approx(want_bw[key], rel=1e-12)
        assert gg.edge_links[i] == want_links[key]
    assert gg.edge_bw_Bps.sum() == pytest.approx(sum(want_bw.values()), rel=1e-12)


def test_large_supernode_counts_are_binned_into_at_most_max_groups_boxes():
    """2,048 H100 supernodes become <= 64 boxes of consecutive supernodes with equal domain counts."""
    g = build_cluster(load_cluster("dgx-h100-superpod", 16384))
    gg = group_fabric(freeze(g))
    sn = np.flatnonzero(np.asarray(gg.layer) == SUPERNODES)
    assert len(sn) == 64
    assert np.all(gg.n_domains[sn] == 32) and np.all(gg.n_accelerators[sn] == 256)
    assert gg.label[sn[0]] == "SN 0-31" and gg.label[sn[-1]] == "SN 2016-2047"


def test_group_fabric_rejects_max_groups_below_one(built):
    """max_groups < 1 cannot bound anything and is refused."""
    with pytest.raises(ValueError, match="max_groups"):
        group_fabric(built("ub-mesh")[1], max_groups=0)


def _failing_savefig(self, fh, *args, **kwargs):
    fh.write(PNG_SIGNATURE + b"half a picture")
    raise RuntimeError("renderer crashed")


def test_failed_render_leaves_no_file(built, tmp_path, monkeypatch):
    """A render that fails halfway leaves neither the output nor a temporary file in the directory."""
    g, fabric = built("dgx-h100-superpod")
    monkeypatch.setattr(Figure, "savefig", _failing_savefig)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        draw_cluster(g, fabric, tmp_path / "out.png", dpi=DPI)
    assert list(tmp_path.iterdir()) == []


def test_failed_render_keeps_the_previous_file(built, tmp_path, monkeypatch):
    """A failed redraw leaves an existing PNG byte for byte as it was."""
    g, fabric = built("dgx-h100-superpod")
    out = draw_cluster(g, fabric, tmp_path / "out.png", dpi=DPI)
    before = out.read_bytes()
    monkeypatch.setattr(Figure, "savefig", _failing_savefig)
    with pytest.raises(RuntimeError):
        draw_cluster(g, fabric, out, dpi=DPI)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("bad", ["missing/dir/out.png", "out.pdf", "out"])
def test_bad_output_path_is_a_one_line_spec_error_naming_the_path(bad, built, tmp_path):
    """A missing directory or a non-.png suffix raises SpecError naming the path, and writes nothing."""
    g, fabric = built("ub-mesh")
    path = tmp_path / bad
    with pytest.raises(SpecError) as info:
        draw_cluster(g, fabric, path, dpi=DPI)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_cli_bad_output_directory_exits_2(tmp_path, capsys):
    """``oassim topo draw`` into a missing directory exits 2 with one error line naming the file."""
    out = tmp_path / "nope" / "x.png"
    assert main(["topo", "draw", "ub-mesh", "-n", "128", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("oassim: error:") and str(out) in err and "\n" not in err


def test_big_supernode_detail_is_a_block(built, tmp_path, monkeypatch):
    """A 4,096-chip torus supernode is drawn as its first 64-chip cube, and the panel title says so."""
    import oassim.topology.draw as draw

    axes = []
    real = draw._left_panel
    monkeypatch.setattr(draw, "_left_panel", lambda ax, g, f: (axes.append(ax), real(ax, g, f)))
    g, fabric = built("tpu-v5p-pod")
    draw_cluster(g, fabric, tmp_path / "tpu.png", dpi=DPI)
    (ax,) = axes
    assert "first cube: 64 of 4,096 accelerators" in ax.get_title()
    marks = sum(len(c.get_offsets()) for c in ax.collections if c.__class__.__name__ == "PathCollection")
    assert marks == 64 + 64 + 48  # the cube's chips, their NICs, the supernode's OCS; never 4,096
