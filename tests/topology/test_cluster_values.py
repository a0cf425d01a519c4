"""Cluster files take strict values: no bool or numeric string for a number, no infinity or NaN."""

from __future__ import annotations

import pytest

from oassim.cli import main
from oassim.errors import SpecError
from oassim.topology.cluster_spec import load_cluster


@pytest.mark.parametrize(
    "path,value,allowed",
    [
        ("accelerators", "64", "valid integer"),
        ("accelerators", 32.0, "valid integer"),
        ("scale_out.links.host.length_m", float("inf"), "finite number"),
        ("scale_out.links.host.length_m", True, "valid number"),
        ("scale_out.links.host.medium", "glass", "'copper', 'optical', 'backplane' or 'pcb'"),
        ("scale_out.nic.rate_Gbps", "400", "valid number"),
        ("scale_out.nic.rate_Gbps", float("nan"), "finite number"),
        ("scale_out.nic.ports", True, "valid integer"),
        ("scale_out.rail_optimized", "no", "valid boolean"),
        ("scale_out.rails", 8.5, "valid integer"),
        ("scale_out.switches.leaf.rate_Gbps", True, "valid number"),
        ("expected.optical_modules", float("inf"), "finite number"),
        ("supernode.spec.size", 8.0, "valid integer"),
        ("supernode.spec.switches", True, "valid integer"),
        ("scale_out.spec.oversubscription", float("nan"), "finite number"),
        ("scale_out.spec.planes", "2", "valid integer"),
    ],
)
def test_lax_value_is_refused_at_its_key_path(cluster_file, path, value, allowed):
    """Each lax value (pydantic coerced it before) is one SpecError naming file, key path and what is allowed."""

    def edit(d):
        d["scale_out"]["nic"] = {}
        d["scale_out"]["switches"]["leaf"] = {"switch": "quantum-2"}
        d["expected"] = {}
        *head, last = path.split(".")
        for key in head:
            d = d[key]
        d[last] = value

    f = cluster_file(edit)
    with pytest.raises(SpecError) as info:
        load_cluster(f)
    msg = str(info.value)
    assert msg.startswith(f"{f}: {path}: ") and allowed in msg and "\n" not in msg


def test_infinite_nic_rate_is_exit_2_not_a_report(cluster_file, capsys):
    """`topo info` on a file with an infinite NIC rate exits 2 with one line, and prints no 'inf' figures."""

    def edit(d):
        d["scale_out"]["nic"] = {"rate_Gbps": float("inf")}

    assert main(["topo", "info", str(cluster_file(edit))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "scale_out.nic.rate_Gbps: Input should be a finite number" in err


@pytest.mark.parametrize("preset", ["dgx-h100-superpod", "cloudmatrix384", "ub-mesh", "tpu-v5p-pod"])
def test_links_built_matches_each_supernode_family(preset):
    """Each family's up-front link count equals the edges its builder wires (switched, clos2, fullmesh, torus)."""
    from oassim.topology.cluster_spec import _family_module
    from oassim.topology.registry import FAMILIES

    sn = load_cluster(preset, 1).supernode
    g = FAMILIES[sn.family][1](sn.spec, sn.links, sn.switches)
    assert _family_module(sn.family).links_built(sn.spec, sn.switches) == g.number_of_edges()


def test_dragonfly_link_estimate_is_a_lower_bound():
    """The dragonfly estimate (hosts + local all-to-all) never exceeds the edges built, so it never refuses wrongly."""
    from oassim.topology.families import dragonfly as df
    from oassim.topology.parts import LinkClass, SwitchClass

    links = {r: LinkClass(r, 50e9, 1e-7, "optical", rate_Gbps=400) for r in df.LINK_ROLES}
    spec = df.Spec(routers_per_group=4, terminals_per_router=2, global_links_per_router=2, groups=9)
    g = df.build(spec, links, {"router": SwitchClass("r", radix=64, latency_s=1e-7, port_rate_Gbps=400)})
    n = df.links_built(spec)
    assert 9 * 4 * 2 + 9 * 6 <= n <= g.number_of_edges()


def test_graph_beyond_the_link_budget_is_refused_before_building(cluster_file, monkeypatch):
    """64 supernodes of 1,024 GPUs x 1,024 switches (67M links) is refused up front, naming the link count."""
    import oassim.topology.cluster as cluster
    from oassim.topology.cluster_spec import MAX_LINKS

    def no_graph(*args, **kwargs):
        raise AssertionError("a graph was built")

    def edit(d):
        d["accelerators"] = 65_536
        d["supernode"]["spec"] = {"size": 1024, "switches": 1024, "links_per_accelerator": 1024}

    monkeypatch.setattr(cluster, "new_graph", no_graph)
    with pytest.raises(SpecError) as info:
        load_cluster(cluster_file(edit))
    # scale-up 64 x 1024 x 1024; then 65,536 each of NIC attachments, host links, leaf-spine links
    # (2,048 leaves x 32 uplinks) and spine-core links (32 groups x 64 pods x 32 cores), radix 64
    want = 64 * 1024 * 1024 + 65_536 + 65_536 + 2048 * 32 + 32 * 64 * 32
    assert want > MAX_LINKS
    assert f"{want:,} links" in str(info.value) and "accelerators:" in str(info.value)
