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
